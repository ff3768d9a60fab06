package train

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/train/data"
)

const (
	checkpointsDir  = "checkpoints"
	checkpointStem  = "step-"
	stateFileName   = "trainer_state.json"
	tempCheckpoints = ".tmp-"
)

// trainerState is the part of a checkpoint beside the GoMLX variables
// (weights, optimizer moments, step counters) that a run needs to continue
// exactly where it stopped.
type trainerState struct {
	Step        int               `json:"step"`
	Batcher     data.BatcherState `json:"batcher"`
	TokensSeen  int64             `json:"tokens_seen"`
	ElapsedSecs float64           `json:"elapsed_s"`
	Model       *rgemma.Config    `json:"model"`
}

// saveCheckpoint writes the variables of ctx and the trainer state into a new
// checkpoint folder. It writes into a temporary folder and renames it, so a
// crash never leaves a partial checkpoint under a final name, and then
// deletes the oldest checkpoints beyond keep.
func saveCheckpoint(runDir string, m *rgemma.Model, state trainerState, keep int) (string, error) {
	root := filepath.Join(runDir, checkpointsDir)
	final := filepath.Join(root, fmt.Sprintf("%s%08d", checkpointStem, state.Step))
	tmp, err := os.MkdirTemp(root, tempCheckpoints)
	if err != nil {
		return "", fmt.Errorf("saving checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // No-op once renamed.
	// MkdirTemp makes the folder private (0700), but the renamed checkpoint should not be.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("saving checkpoint: %w", err)
	}

	handler, err := checkpoints.Build(m.Context).Dir(tmp).Keep(1).Done()
	if err != nil {
		return "", fmt.Errorf("saving checkpoint in %s: %w", tmp, err)
	}
	if err := handler.Save(); err != nil {
		return "", fmt.Errorf("saving checkpoint in %s: %w", tmp, err)
	}
	stateJSON, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeFileSync(filepath.Join(tmp, stateFileName), stateJSON); err != nil {
		return "", err
	}
	if err := syncTree(tmp); err != nil {
		return "", err
	}
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("replacing checkpoint %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	pruneCheckpoints(root, keep)
	return final, nil
}

// listCheckpoints returns the complete checkpoint folders, oldest first.
func listCheckpoints(runDir string) ([]string, error) {
	root := filepath.Join(runDir, checkpointsDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), checkpointStem) {
			if _, err := os.Stat(filepath.Join(root, e.Name(), stateFileName)); err == nil {
				out = append(out, filepath.Join(root, e.Name()))
			}
		}
	}
	sort.Strings(out) // Zero-padded step numbers sort in step order.
	return out, nil
}

func pruneCheckpoints(root string, keep int) {
	list, err := listCheckpoints(filepath.Dir(root))
	if err != nil || keep <= 0 || len(list) <= keep {
		return
	}
	for _, dir := range list[:len(list)-keep] {
		if err := os.RemoveAll(dir); err != nil {
			slog.Warn("could not delete an old checkpoint", "dir", dir, "error", err)
		}
	}
}

// loadCheckpoint restores the variables of a checkpoint folder into the
// model's context and returns its trainer state.
func loadCheckpoint(dir string, m *rgemma.Model) (trainerState, error) {
	var state trainerState
	raw, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if err != nil {
		return state, fmt.Errorf("reading checkpoint: %w", err)
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return state, fmt.Errorf("checkpoint %s: invalid %s: %w", dir, stateFileName, err)
	}
	if _, err := checkpoints.Build(m.Context).Dir(dir).Immediate().Done(); err != nil {
		return state, fmt.Errorf("loading checkpoint %s: %w", dir, err)
	}
	return state, nil
}

func writeFileSync(path string, content []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncTree flushes every file of dir and dir itself to disk, so the rename
// that publishes a checkpoint never exposes unwritten data.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_RDWR, 0)
			if err != nil {
				return err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return syncDir(dir)
}
