package data

import (
	"errors"
	"fmt"
)

// Packed is a set of token rows of equal length, ready to batch.
//
// IDs, Positions and Valid are [rows][SeqLen]. Positions count tokens from
// the start of each segment: a document, or one chunk of a document that
// Pack split across rows. They start at 0 and increase by 1. Padding tokens
// have IDs = the pad id, Positions = 0 and Valid = false, so each pad token
// starts its own one-token segment and the loss never predicts across or
// into padding.
type Packed struct {
	// SeqLen is the length of every row.
	SeqLen int

	// IDs are the token ids, [rows][SeqLen].
	IDs [][]int32

	// Positions are the segment positions, [rows][SeqLen].
	Positions [][]int32

	// Valid is false on padding, [rows][SeqLen].
	Valid [][]bool

	// Docs lists, for each row, the indices in Pack's input of the
	// documents that have tokens in the row, in order of appearance.
	// Consecutive rows that share an index contain chunks of one document.
	Docs [][]int
}

// Rows returns the number of rows.
func (p *Packed) Rows() int { return len(p.IDs) }

// Pack places token sequences into rows of exactly seqLen tokens.
//
// Documents are placed greedily in input order: a document goes into the
// current row when it fits in the space left there, and otherwise starts a
// new row, leaving the rest of the current row as padding. A document longer
// than seqLen starts a new row and is split into chunks of seqLen tokens
// (the last one shorter), one per row, and the next document may follow its
// last chunk. Because the model keeps no state from one row to the next,
// each chunk restarts at position 0 and is a separate document for the
// model, so a split costs one loss target per extra chunk.
//
// Empty sequences are ignored but keep their index for Packed.Docs. It
// returns an error when seqLen < 2 or no sequence has a token.
func Pack(docs [][]int32, seqLen int, padID int32) (*Packed, error) {
	if seqLen < 2 {
		return nil, fmt.Errorf("data: invalid sequence length %d: it must be at least 2 to have a next-token target", seqLen)
	}

	placements, rows := placeSegments(docs, seqLen)
	if rows == 0 {
		return nil, errors.New("data: no tokens to pack: every document is empty")
	}

	p := newPacked(rows, seqLen, padID)
	for _, pl := range placements {
		segment := docs[pl.doc][pl.offset : pl.offset+pl.length]
		ids, positions, valid := p.IDs[pl.row], p.Positions[pl.row], p.Valid[pl.row]
		for k, id := range segment {
			ids[pl.column+k] = id
			positions[pl.column+k] = int32(k)
			valid[pl.column+k] = true
		}
		p.Docs[pl.row] = append(p.Docs[pl.row], pl.doc)
	}
	return p, nil
}

// placement puts tokens [offset, offset+length) of document doc at
// [column, column+length) of a row.
type placement struct {
	doc, offset, length int
	row, column         int
}

// placeSegments plans where Pack puts each document or chunk and returns the
// number of rows.
func placeSegments(docs [][]int32, seqLen int) ([]placement, int) {
	var placements []placement
	rows, used := 0, 0 // used is the token count of the last row, 0 when no row is open
	for i, doc := range docs {
		n := len(doc)
		switch {
		case n == 0:
			continue
		case n <= seqLen && used > 0 && used+n <= seqLen:
			placements = append(placements, placement{doc: i, length: n, row: rows - 1, column: used})
			used += n
		default:
			for offset := 0; offset < n; offset += seqLen {
				length := min(seqLen, n-offset)
				placements = append(placements, placement{doc: i, offset: offset, length: length, row: rows})
				rows++
				used = length
			}
		}
	}
	return placements, rows
}

// newPacked returns rows of padding backed by one allocation per array.
func newPacked(rows, seqLen int, padID int32) *Packed {
	p := &Packed{
		SeqLen:    seqLen,
		IDs:       make([][]int32, rows),
		Positions: make([][]int32, rows),
		Valid:     make([][]bool, rows),
		Docs:      make([][]int, rows),
	}
	ids := make([]int32, rows*seqLen)
	positions := make([]int32, rows*seqLen)
	valid := make([]bool, rows*seqLen)
	if padID != 0 {
		for i := range ids {
			ids[i] = padID
		}
	}
	for r := range rows {
		start, end := r*seqLen, (r+1)*seqLen
		p.IDs[r] = ids[start:end:end]
		p.Positions[r] = positions[start:end:end]
		p.Valid[r] = valid[start:end:end]
	}
	return p
}

// PackStats describes a Packed.
type PackStats struct {
	// Rows is the number of rows and SeqLen their length.
	Rows, SeqLen int

	// Documents is the number of distinct input documents with tokens in
	// the rows.
	Documents int

	// Segments is the number of runs of valid tokens that start at position
	// 0: one per document, plus one per extra chunk of a split document.
	Segments int

	// Tokens is the number of valid tokens and PaddingTokens the number of
	// the others. PaddingFraction is PaddingTokens / (Rows*SeqLen).
	Tokens, PaddingTokens int
	PaddingFraction       float64

	// LossTargets is the number of indices t that the loss counts: Valid[t]
	// and Valid[t+1] are true and Positions[t+1] != 0.
	LossTargets int
}

// Stats counts the rows, documents, tokens, padding and loss targets of p.
func (p *Packed) Stats() PackStats {
	s := PackStats{Rows: p.Rows(), SeqLen: p.SeqLen}
	docs := make(map[int]struct{})
	for r := range p.IDs {
		for _, d := range p.Docs[r] {
			docs[d] = struct{}{}
		}
		valid, positions := p.Valid[r], p.Positions[r]
		for t := range valid {
			if !valid[t] {
				s.PaddingTokens++
				continue
			}
			s.Tokens++
			if positions[t] == 0 {
				s.Segments++
			}
			if t+1 < len(valid) && valid[t+1] && positions[t+1] != 0 {
				s.LossTargets++
			}
		}
	}
	s.Documents = len(docs)
	if total := s.Tokens + s.PaddingTokens; total > 0 {
		s.PaddingFraction = float64(s.PaddingTokens) / float64(total)
	}
	return s
}
