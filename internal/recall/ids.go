package recall

// idIndex finds an entity's dense index by its external id: through a
// slice when the ids are small and non-negative (MovieLens's are: users up
// to 6,040, movies up to 3,952), else through a map. A request looks up its
// user and each excluded or scored movie, and a map with an entry per
// user is rarely in cache under load.
type idIndex[K ~int32] struct {
	slots []int32 // slots[id] is the index + 1; 0: no such id
	m     map[K]int32
}

// maxSlotIDs bounds the slice form: ids up to 4 Mi, and at most 8 slots
// per entity, so sparse ids fall back to the map.
const maxSlotIDs = 1 << 22

// newIDIndex indexes ids: ids[i] gets index i (the last one, should an
// id repeat).
func newIDIndex[K ~int32](ids []K) idIndex[K] {
	hi := K(-1)
	for _, id := range ids {
		if id < 0 || int64(id) >= maxSlotIDs {
			hi = -1
			break
		}
		hi = max(hi, id)
	}
	if hi >= 0 && int(hi) < 8*len(ids)+64 {
		slots := make([]int32, int(hi)+1)
		for i, id := range ids {
			slots[id] = int32(i) + 1
		}
		return idIndex[K]{slots: slots}
	}
	m := make(map[K]int32, len(ids))
	for i, id := range ids {
		m[id] = int32(i)
	}
	return idIndex[K]{m: m}
}

// get returns id's index.
func (x idIndex[K]) get(id K) (int32, bool) {
	if x.m != nil {
		i, ok := x.m[id]
		return i, ok
	}
	if id < 0 || int64(id) >= int64(len(x.slots)) {
		return 0, false
	}
	i := x.slots[id]
	return i - 1, i != 0
}
