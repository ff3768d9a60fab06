package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/internal/golden"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rgemma-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "rgemma")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building rgemma: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the binary and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

// lastJSONLine decodes the last line of stdout.
func lastJSONLine(t *testing.T, stdout string, v any) {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), v), "stdout: %s", stdout)
}

func idsArg(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}

func TestScoreCLIMatchesGolden(t *testing.T) {
	g, err := golden.Open(golden.TinyDir())
	require.NoError(t, err)
	defer g.Close()
	ids, _, err := g.Int32("score_ids")
	require.NoError(t, err)
	want, _, err := g.Float32("score_logprobs")
	require.NoError(t, err)

	stdout, stderr, code := runCLI(t, "score", "-model", golden.TinyDir(), "-ids", idsArg(ids), "-format", "json")
	require.Equal(t, 0, code, stderr)
	var res struct {
		IDs        []int32   `json:"ids"`
		LogProbs   []float64 `json:"logprobs"`
		Perplexity float64   `json:"perplexity"`
	}
	lastJSONLine(t, stdout, &res)
	require.Equal(t, ids, res.IDs)
	require.Len(t, res.LogProbs, len(want))
	for i := range want {
		require.InDelta(t, want[i], res.LogProbs[i], 1e-4, "logprob %d", i)
	}
	require.Greater(t, res.Perplexity, 1.0)
}

func TestGenerateCLIMatchesGreedyGolden(t *testing.T) {
	g, err := golden.Open(golden.TinyDir())
	require.NoError(t, err)
	defer g.Close()
	prompt, _, err := g.Int32("greedy_prompt_ids")
	require.NoError(t, err)
	want, _, err := g.Int32("greedy_ids")
	require.NoError(t, err)

	stdout, stderr, code := runCLI(t, "generate", "-model", golden.TinyDir(), "-prompt-ids", idsArg(prompt),
		"-max-new-tokens", fmt.Sprint(len(want)), "-format", "json")
	require.Equal(t, 0, code, stderr)
	var res struct {
		IDs  []int32 `json:"ids"`
		Text *string `json:"text"`
	}
	lastJSONLine(t, stdout, &res)
	require.Equal(t, want, res.IDs)
	require.NotNil(t, res.Text, "the byte-level tokenizer gives a text field")
}

func TestGenerateCLISeedRepeats(t *testing.T) {
	args := []string{"generate", "-model", golden.TinyDir(), "-prompt", "The", "-max-new-tokens", "12",
		"-temperature", "1.0", "-top-k", "50", "-seed", "9", "-format", "json"}
	first, stderr, code := runCLI(t, args...)
	require.Equal(t, 0, code, stderr)
	second, _, _ := runCLI(t, args...)
	require.Equal(t, first, second)
}

func TestGenerateCLIBatchTextOutput(t *testing.T) {
	prompts := filepath.Join(t.TempDir(), "prompts.txt")
	require.NoError(t, os.WriteFile(prompts, []byte("The\nA\n"), 0o644))
	stdout, stderr, code := runCLI(t, "generate", "-model", golden.TinyDir(), "-prompts-file", prompts, "-max-new-tokens", "4")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "--- prompt 1 (")
	require.Contains(t, stdout, "--- prompt 2 (")
	require.Contains(t, stderr, "generated 8 tokens in")
}

func TestCLIBadInput(t *testing.T) {
	notSPM := filepath.Join(t.TempDir(), "tokenizer.model")
	require.NoError(t, os.WriteFile(notSPM, []byte("plain text, not a protobuf"), 0o644))
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"empty prompt", []string{"generate", "-model", golden.TinyDir(), "-prompt", "", "-prompt-ids", ""}, "give exactly one of"},
		{"empty prompt file", []string{"generate", "-model", golden.TinyDir(), "-prompt-ids", " , "}, "no token ids"},
		{"unknown token id", []string{"generate", "-model", golden.TinyDir(), "-prompt-ids", "1,300"}, "token id 300"},
		{"missing model", []string{"generate", "-model", filepath.Join(t.TempDir(), "none"), "-prompt-ids", "1"}, "not found"},
		{"tokenizer not sentencepiece", []string{"generate", "-model", golden.TinyDir(), "-tokenizer", notSPM, "-prompt", "hi"}, "not a SentencePiece model"},
		{"score one token", []string{"score", "-model", golden.TinyDir(), "-ids", "5"}, "at least 2 tokens"},
		{"bad format", []string{"score", "-model", golden.TinyDir(), "-ids", "5,6", "-format", "xml"}, "invalid -format"},
		{"negative temperature", []string{"generate", "-model", golden.TinyDir(), "-prompt-ids", "5", "-temperature", "-1"}, "temperature"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			require.NotEqual(t, 0, code)
			require.Contains(t, stderr, tc.wantErr)
		})
	}
}

func TestInspectCLI(t *testing.T) {
	stdout, stderr, code := runCLI(t, "inspect", golden.TinyDir())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "parameters total            113.3K")
	require.Contains(t, stdout, "2 recurrent, 1 attention")
	require.Contains(t, stdout, "F32")
}
