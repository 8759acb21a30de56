// Package ann finds the movies whose vectors score highest against a user
// vector. It sits between the trained movie tower (artifact) and the serving
// core (recall): the artifact hands it the movie vectors, recall asks it for
// the top-K movie indexes of one user vector.
//
// The score is always the inner product dot(user, movie) computed by Dot in
// float32; for L2-normalised towers it equals cosine similarity. Every index
// returns results sorted by score, highest first, ties broken by the lower
// id, and every returned score is the exact Dot value, so /recall and /score
// agree bit for bit whichever index answered.
//
// Two indexes implement Index:
//
//   - Exact scans every vector with a bounded heap, which it only offers
//     the items that reach a lower bound on the k-th best score, taken from
//     group maxima of the scores where that pays for k and n (bound.go). At the MovieLens scale
//     (3,706 × 8) a scan takes microseconds and allocates nothing; it is the
//     ground truth for tests and SelfCheck.
//   - HNSW searches a hierarchical navigable small-world graph with the
//     package's own best-first beam search (graph.go), scoring nodes by
//     exact Dot, applying filters during the search, allocating nothing;
//     the graph holds each distinct vector once, and a node found stands
//     for every row with its vector (distinct.go); the vectors farthest
//     from the mean and the longest, which the graph links poorly, are
//     checked after every beam (seedLong);
//     the graph is built here (build.go, by GOMAXPROCS workers) in a flat,
//     pointer-free form and stored as those flat rows (native.go);
//     artifacts written before hold github.com/coder/hnsw's Export format
//     (graphfmt.go), which still loads. A query the graph cannot answer
//     with k accepted items falls back to an exact scan.
package ann
