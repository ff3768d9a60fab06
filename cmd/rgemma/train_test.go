package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeTinyCorpus(t *testing.T) string {
	dir := t.TempDir()
	text := strings.Repeat("The recurrence keeps a fixed-size state; attention sees a local window.\n", 40)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte(text), 0o644))
	return filepath.Join(dir, "*.txt")
}

func TestTrainCLIWritesRunFolder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	stdout, stderr, code := runCLI(t, "train", "-model", "tiny", "-data", writeTinyCorpus(t), "-out", out,
		"-max-steps", "6", "-batch-size", "2", "-seq-len", "32", "-no-progress")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "unigram entropy of the corpus")
	for _, name := range []string{"metrics.jsonl", "loss.png", "samples.txt", "export/model.safetensors", "checkpoints/step-00000006/trainer_state.json"} {
		_, err := os.Stat(filepath.Join(out, name))
		require.NoError(t, err, name)
	}

	// The exported model loads in the other commands.
	_, stderr, code = runCLI(t, "generate", "-model", filepath.Join(out, "export"), "-prompt", "The", "-max-new-tokens", "4")
	require.Equal(t, 0, code, stderr)

	// The same folder without -resume is rejected, so nothing is overwritten.
	_, stderr, code = runCLI(t, "train", "-model", "tiny", "-data", writeTinyCorpus(t), "-out", out, "-max-steps", "6", "-no-progress")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "pass -resume")
}

func TestTrainCLIInterruptSavesCheckpoint(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(binary, "train", "-model", "tiny", "-data", writeTinyCorpus(t), "-out", out,
		"-max-steps", "100000", "-batch-size", "2", "-seq-len", "32", "-no-progress")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())

	// Wait until training is under way (the first metrics line), then interrupt.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if data, err := os.ReadFile(filepath.Join(out, "metrics.jsonl")); err == nil && len(data) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "training did not start: %s", stderr.String())
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "exit after SIGINT: %s", stderr.String())
	require.Contains(t, stdout.String(), "interrupted at step")

	checkpoints, err := filepath.Glob(filepath.Join(out, "checkpoints", "step-*", "trainer_state.json"))
	require.NoError(t, err)
	require.Len(t, checkpoints, 1)

	// The run continues from there.
	_, stderrResume, code := runCLI(t, "train", "-model", "tiny", "-data", writeTinyCorpus(t), "-out", out,
		"-max-steps", "3", "-batch-size", "2", "-seq-len", "32", "-no-progress", "-resume")
	require.Equal(t, 0, code, stderrResume)
}
