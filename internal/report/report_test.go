package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"testing"

	"github.com/towerrecall/towerrecall/internal/train"
)

func TestTrainingSVG(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		epochs []train.EpochStats
		want   []string
		absent []string
	}{
		{
			name:   "loss and validation",
			epochs: []train.EpochStats{{Epoch: 1, Loss: 2, Valid: 0.05, HasValid: true}, {Epoch: 2, Loss: 1.5, Valid: 0.08, HasValid: true}},
			want:   []string{"<svg", "Training loss", "Validation Recall@10", "<polyline"},
		},
		{
			name:   "loss only",
			epochs: []train.EpochStats{{Epoch: 1, Loss: 3}, {Epoch: 2, Loss: 2.5}, {Epoch: 3, Loss: 2.4}},
			want:   []string{"Training loss", `width="480"`},
			absent: []string{"Validation"},
		},
		{
			name:   "one epoch, flat values",
			epochs: []train.EpochStats{{Epoch: 1, Loss: 0, Valid: 0, HasValid: true}},
			want:   []string{"Training loss", "Validation Recall@10"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svg, err := TrainingSVG(tc.epochs)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !bytes.Contains(svg, []byte(want)) {
					t.Errorf("SVG lacks %q", want)
				}
			}
			for _, no := range tc.absent {
				if bytes.Contains(svg, []byte(no)) {
					t.Errorf("SVG has %q", no)
				}
			}
			for _, bad := range []string{"NaN", "Inf"} {
				if bytes.Contains(svg, []byte(bad)) {
					t.Errorf("SVG has %q:\n%s", bad, svg)
				}
			}
			d := xml.NewDecoder(bytes.NewReader(svg))
			for {
				if _, err := d.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("not well-formed XML: %v\n%s", err, svg)
				}
			}
		})
	}
}

func TestTrainingSVGErrors(t *testing.T) {
	t.Parallel()
	if _, err := TrainingSVG(nil); err == nil {
		t.Error("no error for no epochs")
	}
	if _, err := TrainingSVG([]train.EpochStats{{Epoch: 1, Loss: math.NaN()}}); err == nil {
		t.Error("no error for a NaN loss")
	}
}

func TestTicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lo, hi float64
		whole  bool
	}{
		{"recall", 0.031, 0.087, false},
		{"loss", 1.2, 6.9, false},
		{"epochs", 1, 30, true},
		{"one epoch", 1, 1, true},
		{"flat zero", 0, 0, false},
		{"negative", -3, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := ticks(tc.lo, tc.hi, tc.whole)
			if len(ts) < 2 || len(ts) > 12 {
				t.Fatalf("%d ticks: %v", len(ts), ts)
			}
			if ts[0] > tc.lo || ts[len(ts)-1] < tc.hi {
				t.Errorf("ticks %v do not cover [%g, %g]", ts, tc.lo, tc.hi)
			}
			if tc.whole && ts[1]-ts[0] < 1 {
				t.Errorf("ticks %v: step below 1", ts)
			}
		})
	}
}
