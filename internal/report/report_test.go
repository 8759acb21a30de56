package report

import (
	"bytes"
	"testing"

	"github.com/towerrecall/towerrecall/internal/train"
)

func TestTrainingSVG(t *testing.T) {
	t.Parallel()
	epochs := []train.EpochStats{{Epoch: 1, Loss: 2, Valid: 0.05, HasValid: true}, {Epoch: 2, Loss: 1.5, Valid: 0.08, HasValid: true}}
	svg, err := TrainingSVG(epochs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Training loss", "Validation Recall@10"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if _, err := TrainingSVG(nil); err == nil {
		t.Error("no error for no epochs")
	}
}
