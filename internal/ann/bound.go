package ann

import "math"

// A scan that starts with the threshold at -Inf pushes about
// k·(1+ln(n/k)) items through the heap before the threshold catches up,
// each push a few mispredicted branches; at the MovieLens scale that costs
// more than scoring every vector. So before the heap sees anything the
// exact scan derives a lower bound on the k-th best accepted score from the
// scores alone:
//
// The slots are cut into G disjoint groups (lane j of a chunk of
// consecutive blocks), and each group's maximum over its accepted slots is
// taken. If m is the k-th largest of those maxima, k distinct groups each
// hold an accepted item scoring at least m, so the k-th best accepted score
// is at least m and every item that can be returned scores at least m.
// Starting the scan at thr = m therefore changes nothing in the result
// (items scoring exactly m are still offered and the heap's tie-break by
// lower id decides), but skips most pushes: with G = 4k groups the best
// items rarely share a group, and only about k of them reach the bound.

const (
	// groupsPerK is G/k: more groups make the bound tighter (fewer pushes
	// past it) but cost more to select from.
	groupsPerK = 4
	// minGroups keeps the bound useful for small k, where selecting is
	// nearly free.
	minGroups = 64
)

// boundPays reports whether a bound is expected to save more heap pushes
// than it costs for k of n items. Without one a scan pushes about
// k·(1+ln(n/k)) items, with one about 1.1·k; a push costs some 30-50 ns,
// the group maxima about 0.05 ns per item and selecting among them about
// 4 ns per group (AVX2 kernel, measured at n = 3,706 and 100,000). So the
// bound loses for k = 1 at any n and for k ≤ 10 at n = 100,000, and wins
// from there on, up to k = n. A filter accepting few items also means fewer
// pushes to save; it is not counted, as even then the bound costs little.
func boundPays(k, n int) bool {
	saved := 700 * float64(k) * math.Log(float64(n)/float64(k)) // in units of 0.05 ns
	groups := min(max(groupsPerK*k, minGroups), n)              // about chunkBlocks' count
	return saved >= float64(n+80*groups)
}

// chunkBlocks returns how many consecutive blocks form one chunk (eight
// groups, one per lane) so that the nb blocks give at least groupsPerK·k
// and minGroups groups, if there are that many slots, and less than twice
// that. It returns 0 when there are fewer slots than k: fewer than k
// groups cannot bound anything.
func chunkBlocks(k, nb int) int {
	if k > nb*lanes {
		return 0
	}
	chunks := (max(groupsPerK*k, minGroups) + lanes - 1) / lanes
	return max(1, nb/chunks)
}

// kthLargest returns the k-th largest of v (k ≥ 1, no NaN), or -Inf if
// fewer than k values are finite; it reorders v. Empty groups (-Inf) are
// dropped first: with a sparse filter they are most of v, and often leave
// fewer than k.
func kthLargest(v []float32, k int) float32 {
	f := 0
	for _, x := range v {
		v[f] = x
		if x > float32(math.Inf(-1)) {
			f++
		}
	}
	if f < k {
		return float32(math.Inf(-1))
	}
	return quickselect(v[:f], k-1)
}

// quickselect reorders v so that v[i] is the value at index i of v sorted
// in descending order, and returns it.
//
// The group maxima come in no useful order, so a comparison branch in the
// partition loop is mispredicted about half the time; partitionAbove is
// written without one (Lomuto's scheme: every element is swapped, the
// boundary moves by the comparison's outcome), which makes selecting from
// a few hundred values several times faster. Lomuto's scheme degrades to
// quadratic time when many values equal the pivot (duplicate vectors tie
// exactly), so a split that leaves few values above the pivot is followed
// by a pass that sets the ones equal to it aside.
func quickselect(v []float32, i int) float32 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		p := pivotToEnd(v[lo : hi+1])
		s := lo + partitionAbove(v[lo:hi], p) // v[lo:s] > p ≥ v[s:hi]
		v[s], v[hi] = v[hi], v[s]
		switch {
		case i < s:
			hi = s - 1
		case i == s:
			return p
		default:
			if above := s - lo; above < (hi-lo)/8 {
				e := s + 1 + partitionAtLeast(v[s+1:hi+1], p) // v[s:e] == p
				if i < e {
					return p
				}
				lo = e
				continue
			}
			lo = s + 1
		}
	}
	return v[i]
}

// pivotToEnd moves the median of the first, middle and last values of v
// to its end and returns it.
func pivotToEnd(v []float32) float32 {
	last, mid := len(v)-1, len(v)/2
	if v[mid] > v[last] {
		v[mid], v[last] = v[last], v[mid]
	}
	if v[0] > v[last] {
		v[0], v[last] = v[last], v[0]
	}
	// v[last] is the largest of the three; the larger of the other two is
	// the median.
	if v[0] > v[mid] {
		v[0], v[mid] = v[mid], v[0]
	}
	v[mid], v[last] = v[last], v[mid]
	return v[last]
}

// partitionAbove moves the values of v greater than p to its front and
// returns how many there are, without a data-dependent branch.
func partitionAbove(v []float32, p float32) int {
	s := 0
	for j, x := range v {
		v[j] = v[s]
		v[s] = x
		inc := 0
		if x > p { // compiled to SETHI, not a jump
			inc = 1
		}
		s += inc
	}
	return s
}

// partitionAtLeast moves the values of v not less than p to its front and
// returns how many there are, like partitionAbove.
func partitionAtLeast(v []float32, p float32) int {
	s := 0
	for j, x := range v {
		v[j] = v[s]
		v[s] = x
		inc := 0
		if x >= p {
			inc = 1
		}
		s += inc
	}
	return s
}
