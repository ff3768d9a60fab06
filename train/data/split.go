package data

import (
	"fmt"
	"math"
)

// Split divides the rows of p into a training set and an evaluation set that
// contains about evalFraction of the rows, chosen at random from seed. The same
// p, evalFraction and seed always give the same split, and both sets keep
// p's row order. The returned rows share memory with p.
//
// Rows that contain chunks of one document form a group, and groups are
// assigned whole, in a shuffled order, to the evaluation set while they fit
// in its target size round(evalFraction*rows). So a document is in only one
// set, and the evaluation set may come out smaller than the target. When
// evalFraction > 0 and p has at least 2 rows, the evaluation set gets at
// least 1 row and the training set keeps at least 1. With fewer than 2 rows,
// or evalFraction = 0, the evaluation set is empty.
//
// It returns an error when p is nil, its arrays disagree in shape, or
// evalFraction is outside [0, 1).
func Split(p *Packed, evalFraction float64, seed uint64) (train, eval *Packed, err error) {
	if err := p.validate(); err != nil {
		return nil, nil, err
	}
	if math.IsNaN(evalFraction) || evalFraction < 0 || evalFraction >= 1 {
		return nil, nil, fmt.Errorf("data: invalid evaluation fraction %v: it must be in [0, 1)", evalFraction)
	}

	rows := p.Rows()
	target := 0
	if evalFraction > 0 && rows >= 2 {
		target = min(max(int(math.Round(evalFraction*float64(rows))), 1), rows-1)
	}

	inEval := make([]bool, rows)
	groups := rowGroups(p)
	order := permutation(len(groups), seed, splitStream)
	count := 0
	for _, g := range order {
		group := groups[g]
		if size := group.end - group.start; count+size <= target {
			for r := group.start; r < group.end; r++ {
				inEval[r] = true
			}
			count += size
		}
	}
	if count == 0 && target > 0 {
		// NOTE: every group is larger than the target, so the evaluation set
		// takes the last rows of one group, and the chunks of that group's
		// long document end up in both sets.
		group := groups[order[0]]
		for r := group.end - target; r < group.end; r++ {
			inEval[r] = true
		}
	}

	train, eval = &Packed{SeqLen: p.SeqLen}, &Packed{SeqLen: p.SeqLen}
	for r := range rows {
		dst := train
		if inEval[r] {
			dst = eval
		}
		dst.IDs = append(dst.IDs, p.IDs[r])
		dst.Positions = append(dst.Positions, p.Positions[r])
		dst.Valid = append(dst.Valid, p.Valid[r])
		if p.Docs != nil {
			dst.Docs = append(dst.Docs, p.Docs[r])
		}
	}
	return train, eval, nil
}

// rowGroup is the row range [start, end).
type rowGroup struct{ start, end int }

// rowGroups returns the maximal runs of consecutive rows in which each row
// shares a document with the next, according to p.Docs.
func rowGroups(p *Packed) []rowGroup {
	var groups []rowGroup
	for r := range p.Rows() {
		if r > 0 && sharesDocument(p, r-1, r) {
			groups[len(groups)-1].end = r + 1
			continue
		}
		groups = append(groups, rowGroup{start: r, end: r + 1})
	}
	return groups
}

// sharesDocument reports whether the last document of row a is the first
// document of row b.
func sharesDocument(p *Packed, a, b int) bool {
	if a >= len(p.Docs) || b >= len(p.Docs) || len(p.Docs[a]) == 0 || len(p.Docs[b]) == 0 {
		return false
	}
	return p.Docs[a][len(p.Docs[a])-1] == p.Docs[b][0]
}
