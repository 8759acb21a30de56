package recall

import (
	"testing"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

func TestIDIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ids     []movielens.MovieID
		wantMap bool
		lookups map[movielens.MovieID]int32 // id → index; missing: -1
	}{
		{"dense", []movielens.MovieID{3, 1, 2, 10}, false,
			map[movielens.MovieID]int32{3: 0, 1: 1, 2: 2, 10: 3, 0: -1, 4: -1, 11: -1, -1: -1, 1 << 30: -1}},
		{"zero id", []movielens.MovieID{0, 5}, false, map[movielens.MovieID]int32{0: 0, 5: 1, 1: -1}},
		{"repeated id keeps the last", []movielens.MovieID{7, 7}, false, map[movielens.MovieID]int32{7: 1}},
		{"sparse ids use a map", []movielens.MovieID{1, 1 << 20}, true,
			map[movielens.MovieID]int32{1: 0, 1 << 20: 1, 2: -1, -1: -1}},
		{"negative ids use a map", []movielens.MovieID{-4, 2}, true, map[movielens.MovieID]int32{-4: 0, 2: 1, 0: -1}},
		{"huge ids use a map", []movielens.MovieID{1 << 30}, true, map[movielens.MovieID]int32{1 << 30: 0, 0: -1}},
		{"empty", nil, true, map[movielens.MovieID]int32{0: -1, 1: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newIDIndex(tt.ids)
			if (x.m != nil) != tt.wantMap {
				t.Errorf("map form %v, want %v", x.m != nil, tt.wantMap)
			}
			for id, want := range tt.lookups {
				got, ok := x.get(id)
				if want < 0 {
					if ok {
						t.Errorf("get(%d) = %d, want absent", id, got)
					}
				} else if !ok || got != want {
					t.Errorf("get(%d) = %d, %v, want %d", id, got, ok, want)
				}
			}
		})
	}
}
