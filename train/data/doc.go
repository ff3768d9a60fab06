// Package data turns a text corpus into the packed token rows that a
// RecurrentGemma model trains on.
//
// The pipeline has four steps:
//
//  1. ReadDocuments reads text files, directory trees and JSONL files into
//     Documents.
//  2. Tokenize encodes each Document with a tokenizer.Tokenizer.
//  3. Pack places the token sequences into rows of exactly SeqLen tokens,
//     with segment positions that restart at 0 at each document start.
//  4. Split holds out evaluation rows, and a Batcher yields batches of rows
//     in a shuffled order that can be saved and restored.
//
// The model treats a position of 0 as the start of a new document, so
// nothing crosses a document boundary. The training loss at index t predicts
// the token at t+1 and counts only the indices where both t and t+1 are valid
// (not padding) and Positions[t+1] != 0. PackStats.LossTargets counts these
// indices, and UnigramEntropy gives the loss of a model that ignores context.
//
// All randomness comes from math/rand/v2's PCG generator, and the shuffles
// use their own Fisher-Yates code on top of PCG.Uint64, so a seed gives the
// same order with every Go version that keeps PCG's output unchanged.
package data
