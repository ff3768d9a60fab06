package data

import (
	"errors"
	"fmt"
)

// Batch is a batch of rows from a Packed. IDs, Positions and Valid are
// [B][T] with T = Packed.SeqLen. The rows share memory with the Packed and
// must not be modified.
type Batch struct {
	IDs       [][]int32
	Positions [][]int32
	Valid     [][]bool

	// Rows are the indices of the batch's rows in the Packed, [B].
	Rows []int
}

// BatcherState is the position of a Batcher in its stream of rows. It
// encodes to JSON, so a training checkpoint can store it and a Batcher over
// the same rows can Restore it.
type BatcherState struct {
	// Seed is the seed of the shuffles.
	Seed uint64 `json:"seed"`

	// Epoch counts the completed passes over the rows, and Index is the
	// position of the next row in the shuffled order of epoch Epoch, in
	// [0, Rows).
	Epoch int `json:"epoch"`
	Index int `json:"index"`

	// Rows and SeqLen describe the data, so that Restore can reject a state
	// saved for other data.
	Rows   int `json:"rows"`
	SeqLen int `json:"seq_len"`
}

// Batcher yields batches of rows in a shuffled order. Each epoch visits
// every row once in the order of a permutation drawn from PCG(seed, epoch).
// The epochs form one stream that batches are cut from, so every batch has
// exactly batchSize rows, and a batch that crosses the end of an epoch
// takes its first rows from one epoch and the rest from the next. A Batcher
// is not safe for concurrent use.
type Batcher struct {
	p         *Packed
	batchSize int
	seed      uint64
	epoch     int
	index     int
	perm      []int // row order of the current epoch
}

// NewBatcher returns a Batcher at the start of epoch 0. It returns an error
// when p has no rows or rows of unequal length, or batchSize < 1.
// batchSize may exceed the number of rows, and then one batch spans several
// epochs.
func NewBatcher(p *Packed, batchSize int, seed uint64) (*Batcher, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Rows() == 0 {
		return nil, errors.New("data: NewBatcher needs at least 1 row, got 0")
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("data: invalid batch size %d: it must be at least 1", batchSize)
	}
	b := &Batcher{p: p, batchSize: batchSize, seed: seed}
	b.perm = permutation(p.Rows(), b.seed, 0)
	return b, nil
}

// Next returns the next batchSize rows of the stream.
func (b *Batcher) Next() Batch {
	batch := Batch{
		IDs:       make([][]int32, b.batchSize),
		Positions: make([][]int32, b.batchSize),
		Valid:     make([][]bool, b.batchSize),
		Rows:      make([]int, b.batchSize),
	}
	for i := range b.batchSize {
		r := b.perm[b.index]
		batch.IDs[i], batch.Positions[i], batch.Valid[i], batch.Rows[i] = b.p.IDs[r], b.p.Positions[r], b.p.Valid[r], r

		b.index++
		if b.index == len(b.perm) {
			b.epoch++
			b.index = 0
			b.perm = permutation(len(b.perm), b.seed, uint64(b.epoch))
		}
	}
	return batch
}

// State returns the position of the next row, to save with a checkpoint.
func (b *Batcher) State() BatcherState {
	return BatcherState{
		Seed:   b.seed,
		Epoch:  b.epoch,
		Index:  b.index,
		Rows:   b.p.Rows(),
		SeqLen: b.p.SeqLen,
	}
}

// Restore moves the Batcher to a position that State returned, taking the
// seed from s, so the following batches equal those that followed State.
// The batch size may differ from the one in use when s was saved. It returns
// an error, and leaves the Batcher unchanged, when s was saved for data with
// another number of rows or another SeqLen, or its Epoch or Index are out of
// range.
func (b *Batcher) Restore(s BatcherState) error {
	rows := b.p.Rows()
	switch {
	case s.Rows != rows:
		return fmt.Errorf("data: cannot restore batcher state saved for %d rows into data with %d rows", s.Rows, rows)
	case s.SeqLen != b.p.SeqLen:
		return fmt.Errorf("data: cannot restore batcher state saved for sequence length %d into data with sequence length %d", s.SeqLen, b.p.SeqLen)
	case s.Epoch < 0:
		return fmt.Errorf("data: invalid batcher state: negative epoch %d", s.Epoch)
	case s.Index < 0 || s.Index >= rows:
		return fmt.Errorf("data: invalid batcher state: index %d outside [0, %d)", s.Index, rows)
	}
	b.seed, b.epoch, b.index = s.Seed, s.Epoch, s.Index
	b.perm = permutation(rows, b.seed, uint64(b.epoch))
	return nil
}

// validate checks that p's arrays have the same number of rows and every row
// has SeqLen entries.
func (p *Packed) validate() error {
	if p == nil {
		return errors.New("data: packed rows are nil")
	}
	rows := len(p.IDs)
	if len(p.Positions) != rows || len(p.Valid) != rows {
		return fmt.Errorf("data: invalid packed rows: %d rows of ids, %d of positions and %d of valid flags",
			rows, len(p.Positions), len(p.Valid))
	}
	if p.Docs != nil && len(p.Docs) != rows {
		return fmt.Errorf("data: invalid packed rows: %d rows of ids but %d rows of document indices", rows, len(p.Docs))
	}
	for r := range rows {
		if len(p.IDs[r]) != p.SeqLen || len(p.Positions[r]) != p.SeqLen || len(p.Valid[r]) != p.SeqLen {
			return fmt.Errorf("data: invalid packed row %d: lengths %d, %d and %d, expected SeqLen %d",
				r, len(p.IDs[r]), len(p.Positions[r]), len(p.Valid[r]), p.SeqLen)
		}
	}
	return nil
}
