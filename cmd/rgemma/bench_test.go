package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInitAndBenchCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	_, stderr, code := runCLI(t, "init", "-preset", "tiny", "-out", dir, "-seed", "3")
	require.Equal(t, 0, code, stderr)
	for _, name := range []string{"config.json", "model.safetensors"} {
		_, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
	}

	// A second init into the same directory must fail without overwriting it.
	_, stderr, code = runCLI(t, "init", "-preset", "tiny", "-out", dir)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "not empty")

	stdout, stderr, code := runCLI(t, "bench", "-model", dir, "-only", "forward,decode", "-reps", "1",
		"-batch", "2", "-seq", "8", "-decode-batches", "1,2", "-prompt", "3", "-decode-steps", "2", "-format", "json")
	require.Equal(t, 0, code, stderr)
	var res struct {
		Backend  string `json:"backend"`
		ModelDir string `json:"model_dir"`
		Forward  *struct {
			Batch        int     `json:"batch"`
			Seq          int     `json:"seq"`
			TokensPerSec float64 `json:"tokens_per_s"`
			CompileSec   float64 `json:"compile_s"`
		} `json:"forward"`
		Decode []struct {
			Batch        int     `json:"batch"`
			TokensPerSec float64 `json:"tokens_per_s"`
		} `json:"decode"`
		Train *struct{} `json:"train"`
	}
	lastJSONLine(t, stdout, &res)
	require.NotEmpty(t, res.Backend)
	require.Equal(t, dir, res.ModelDir)
	require.NotNil(t, res.Forward)
	require.Equal(t, 2, res.Forward.Batch)
	require.Equal(t, 8, res.Forward.Seq)
	require.Greater(t, res.Forward.TokensPerSec, 0.0)
	require.Greater(t, res.Forward.CompileSec, 0.0)
	require.Len(t, res.Decode, 2)
	for i, batch := range []int{1, 2} {
		require.Equal(t, batch, res.Decode[i].Batch)
		require.Greater(t, res.Decode[i].TokensPerSec, 0.0, "decode batch %d", batch)
	}
	require.Nil(t, res.Train, "-only leaves out the training phase")
}

func TestBenchCLIBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown phase", []string{"bench", "-preset", "tiny", "-only", "forward,warp"}, `unknown phase "warp"`},
		{"preset and model", []string{"bench", "-preset", "tiny", "-model", t.TempDir()}, "not both"},
		{"zero reps", []string{"bench", "-preset", "tiny", "-reps", "0"}, "-reps"},
		{"negative warmup", []string{"bench", "-preset", "tiny", "-warmup", "-1"}, "invalid -warmup -1"},
		{"bad batch list", []string{"bench", "-preset", "tiny", "-decode-batches", "1,x"}, "-decode-batches"},
		{"init without out", []string{"init", "-preset", "tiny"}, "missing -out"},
		{"init bad dtype", []string{"init", "-preset", "tiny", "-out", t.TempDir(), "-dtype", "F16"}, "invalid -dtype"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			require.NotEqual(t, 0, code)
			require.Contains(t, stderr, tc.wantErr)
		})
	}
}

// TestBenchWarmupCalls checks that -warmup adds untimed training steps: the
// first loss (from the compiling call) stays, and the last loss comes after
// more updates of the same batch, so it is lower.
func TestBenchWarmupCalls(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	_, stderr, code := runCLI(t, "init", "-preset", "tiny", "-out", dir, "-seed", "3")
	require.Equal(t, 0, code, stderr)

	type trainLosses struct {
		Settings struct {
			Warmup int `json:"warmup"`
		} `json:"settings"`
		Train struct {
			FirstLoss float64 `json:"first_loss"`
			LastLoss  float64 `json:"last_loss"`
		} `json:"train"`
	}
	run := func(warmup string) trainLosses {
		stdout, stderr, code := runCLI(t, "bench", "-model", dir, "-only", "train", "-reps", "1",
			"-batch", "2", "-train-seq", "8", "-warmup", warmup, "-format", "json")
		require.Equal(t, 0, code, stderr)
		var res trainLosses
		lastJSONLine(t, stdout, &res)
		return res
	}
	none, three := run("0"), run("3")
	require.Equal(t, 0, none.Settings.Warmup)
	require.Equal(t, 3, three.Settings.Warmup)
	require.Equal(t, none.Train.FirstLoss, three.Train.FirstLoss)
	require.Less(t, three.Train.LastLoss, none.Train.LastLoss)
}

// TestSplitNote checks how the forward line describes a split batch, a
// whole batch on a multi-device backend, and a one-device backend.
func TestSplitNote(t *testing.T) {
	assert.Equal(t, ", split over 2 devices", splitNote(&forwardResult{Devices: 2}))
	assert.Equal(t, ", whole on 1 device (3 rows do not divide by 2 devices)",
		splitNote(&forwardResult{Devices: 1, WholeReason: "3 rows do not divide by 2 devices"}))
	assert.Equal(t, "", splitNote(&forwardResult{Devices: 1}))
}
