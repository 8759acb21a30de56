// Package nn holds the float32 building blocks of the towers: embedding
// tables with mean pooling and sparse gradients, dense layers, ReLU, L2
// normalisation, a fast exponential, and the Adam and RMSprop optimizers with
// lazy (row-sparse) updates for embeddings. It sits under tower and train in
// the data flow and knows nothing about MovieLens.
//
// Conventions (gonum's): matrices are flat row-major []float32 with explicit
// sizes, the destination comes first, functions ending in To write into their
// first argument and never modify their inputs. Shape mismatches are
// programmer errors and panic. Nothing here allocates in a hot loop.
package nn
