package rgemma

import (
	"fmt"
	"math"
)

// scoreChunk is the number of tokens fed per decode step while scoring; the
// memory of scoring does not grow with the text length.
const scoreChunk = 256

// ScoreResult holds the log-likelihood of a token sequence.
type ScoreResult struct {
	// LogProbs[i] = log p(ids[i+1] | ids[..i]), natural log; len(ids)-1 values.
	LogProbs []float64
	// Perplexity is exp(-mean(LogProbs)).
	Perplexity float64
}

// Score computes the next-token log-probabilities of one document. ids must
// hold at least two tokens.
func (m *Model) Score(ids []int32) (*ScoreResult, error) {
	if len(ids) < 2 {
		return nil, fmt.Errorf("scoring needs at least 2 tokens, got %d", len(ids))
	}
	d, err := m.NewDecoder(1)
	if err != nil {
		return nil, err
	}
	res := &ScoreResult{}
	var sum float64
	for start := 0; start < len(ids)-1; start += scoreChunk {
		end := min(start+scoreChunk, len(ids)-1)
		logits, err := d.Feed([][]int32{ids[start:end]})
		if err != nil {
			return nil, err
		}
		for t, row := range logits[0] {
			lp := logSoftmaxAt(row, int(ids[start+t+1]))
			res.LogProbs = append(res.LogProbs, lp)
			sum += lp
		}
	}
	res.Perplexity = math.Exp(-sum / float64(len(res.LogProbs)))
	return res, nil
}

// logSoftmaxAt returns log softmax(logits)[i], computed in float64.
func logSoftmaxAt(logits []float32, i int) float64 {
	top := math.Inf(-1)
	for _, v := range logits {
		top = math.Max(top, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - top)
	}
	return float64(logits[i]) - top - math.Log(sum)
}
