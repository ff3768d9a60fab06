package rgemma

import (
	"fmt"
	"sync/atomic"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Decoder holds the fixed-size decoding state of a batch of rows and feeds
// them tokens. Its memory does not grow with the number of tokens fed:
// see Config.DecodeStateBytes.
type Decoder struct {
	model   *Model
	batch   int
	state   []*tensors.Tensor
	counts  []int32 // Tokens each row has seen.
	nextPos []int32 // Segment position of each row's next token.
}

// stepCompilations counts the graphs built for Step, for tests.
var stepCompilations atomic.Int64

// NewDecoder returns a decoder with an empty state for `batch` rows.
func (m *Model) NewDecoder(batch int) (*Decoder, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("decoder batch size must be > 0, got %d", batch)
	}
	if err := m.CheckComplete(); err != nil {
		return nil, err
	}
	d := &Decoder{model: m, batch: batch, counts: make([]int32, batch), nextPos: make([]int32, batch)}
	for _, s := range stateShapes(m.Config, batch) {
		d.state = append(d.state, tensors.FromShape(s))
	}
	return d, nil
}

// Batch returns the number of rows.
func (d *Decoder) Batch() int { return d.batch }

// Counts returns how many tokens each row has seen.
func (d *Decoder) Counts() []int32 { return append([]int32(nil), d.counts...) }

// StartDocument makes the next token of row b start a new document: the
// recurrence restarts and earlier tokens are hidden from attention.
func (d *Decoder) StartDocument(b int) { d.nextPos[b] = 0 }

// stepExec returns the model's compiled Step, built on first use. GoMLX
// compiles it once per input shape and caches the result.
func (m *Model) stepExec() (*context.Exec, error) {
	if m.stepExecCache != nil {
		return m.stepExecCache, nil
	}
	cfg := m.Config
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, inputs []*Node) []*Node {
		stepCompilations.Add(1)
		logits, state := Step(ctx, cfg, inputs[0], inputs[1], inputs[2], inputs[3], inputs[4:])
		return append([]*Node{logits}, state...)
	})
	if err != nil {
		return nil, fmt.Errorf("building the decode step: %w", err)
	}
	// Prefill lengths are bucketed (see bucketLength), so the number of
	// shapes stays small; keep them all.
	exec.SetMaxCache(-1)
	m.stepExecCache = exec
	return exec, nil
}

// bucketLength rounds a chunk length up to 1, 2, 4, ... so that prompts of
// many lengths share a few compiled graphs; the padding is masked out.
func bucketLength(n int) int {
	b := 1
	for b < n {
		b *= 2
	}
	return b
}

// Feed runs rows[b] as the next tokens of row b (rows may have different
// lengths, including 0) and returns, for each row, the logits [n_b][V] after
// each of its tokens. Row b must have len(rows) == Batch().
func (d *Decoder) Feed(rows [][]int32) ([][][]float32, error) {
	if len(rows) != d.batch {
		return nil, fmt.Errorf("decoder has %d rows, got %d token rows", d.batch, len(rows))
	}
	V := d.model.Config.VocabSize
	maxLen := 0
	for b, row := range rows {
		maxLen = max(maxLen, len(row))
		for t, id := range row {
			if id < 0 || int(id) >= V {
				return nil, fmt.Errorf("token id %d at row %d, index %d is out of range [0, vocab_size=%d)", id, b, t, V)
			}
		}
	}
	out := make([][][]float32, d.batch)
	if maxLen == 0 {
		return out, nil
	}
	C := bucketLength(maxLen)

	ids := make([]int32, d.batch*C)
	positions := make([]int32, d.batch*C)
	valid := make([]bool, d.batch*C)
	for b, row := range rows {
		for t := 0; t < C; t++ {
			positions[b*C+t] = d.nextPos[b] + int32(t)
			if t < len(row) {
				ids[b*C+t] = row[t]
				valid[b*C+t] = true
			}
		}
	}

	exec, err := d.model.stepExec()
	if err != nil {
		return nil, err
	}
	args := []any{
		tensors.FromFlatDataAndDimensions(ids, d.batch, C),
		tensors.FromFlatDataAndDimensions(positions, d.batch, C),
		tensors.FromFlatDataAndDimensions(valid, d.batch, C),
		tensors.FromFlatDataAndDimensions(append([]int32(nil), d.counts...), d.batch),
	}
	for _, s := range d.state {
		args = append(args, s)
	}
	results, err := exec.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("running the decode step: %w", err)
	}
	for _, s := range d.state {
		s.FinalizeAll()
	}
	d.state = results[1:]

	logits, err := tensors.CopyFlatData[float32](results[0])
	results[0].FinalizeAll()
	if err != nil {
		return nil, err
	}
	for b, row := range rows {
		out[b] = make([][]float32, len(row))
		for t := range row {
			out[b][t] = logits[(b*C+t)*V : (b*C+t+1)*V]
		}
		d.counts[b] += int32(len(row))
		d.nextPos[b] += int32(len(row))
	}
	return out, nil
}
