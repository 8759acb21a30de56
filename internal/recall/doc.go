// Package recall is the serving core: it holds the live model (towers,
// encoder, catalogue, ANN index) behind an atomic pointer and turns a
// request into candidates. It sits between artifact/ann and server.
package recall
