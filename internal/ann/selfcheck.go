package ann

import (
	"fmt"
	"slices"
)

// SelfCheck measures the mean recall@k of idx against exact for every k in
// ks over queries, without filters. A result counts as a hit if its id is
// valid, not repeated, and its true score (recomputed from exact's vectors,
// not trusted from idx) is at least the k-th exact score, so ties at the
// cut-off are not penalised. The recall of one query is hits divided by the
// number of exact results.
func SelfCheck(idx Index, exact *Exact, queries [][]float32, ks []int) (map[int]float64, error) {
	if idx.Len() != exact.Len() || idx.Dim() != exact.Dim() {
		return nil, fmt.Errorf("%w: selfcheck: index is %d×%d, exact is %d×%d",
			ErrInvalid, idx.Len(), idx.Dim(), exact.Len(), exact.Dim())
	}
	if len(queries) == 0 || len(ks) == 0 {
		return nil, fmt.Errorf("%w: selfcheck: no queries or no k", ErrInvalid)
	}
	kmax := slices.Max(ks)
	var got, want []Result
	seen := make(map[int32]struct{}, kmax)
	sums := make(map[int]float64, len(ks))
	for qi, q := range queries {
		for _, k := range ks {
			var err error
			if want, err = exact.Search(want, q, k, nil); err != nil {
				return nil, fmt.Errorf("selfcheck: query %d: %w", qi, err)
			}
			if got, err = idx.Search(got, q, k, nil); err != nil {
				return nil, fmt.Errorf("selfcheck: query %d: %s: %w", qi, idx.Name(), err)
			}
			cut := want[len(want)-1].Score
			clear(seen)
			hits := 0
			for _, r := range got {
				if r.ID < 0 || int(r.ID) >= exact.Len() {
					continue
				}
				if _, dup := seen[r.ID]; dup {
					continue
				}
				seen[r.ID] = struct{}{}
				if Dot(q, exact.Vector(r.ID)) >= cut {
					hits++
				}
			}
			sums[k] += float64(min(hits, len(want))) / float64(len(want))
		}
	}
	out := make(map[int]float64, len(ks))
	for _, k := range ks {
		out[k] = sums[k] / float64(len(queries))
	}
	return out, nil
}
