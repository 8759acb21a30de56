// Package report draws the training report: loss and validation Recall@10
// per epoch, as an SVG written next to the artifact so that a user sees how
// training went without reading logs.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/towerrecall/towerrecall/internal/train"
)

// TrainingSVG renders the per-epoch training loss and, when validation ran,
// validation Recall@10, side by side.
func TrainingSVG(epochs []train.EpochStats) ([]byte, error) {
	if len(epochs) == 0 {
		return nil, errors.New("report: no epochs")
	}
	loss := make(plotter.XYs, len(epochs))
	var valid plotter.XYs
	for i, e := range epochs {
		loss[i] = plotter.XY{X: float64(e.Epoch), Y: e.Loss}
		if e.HasValid {
			valid = append(valid, plotter.XY{X: float64(e.Epoch), Y: e.Valid})
		}
	}
	plots := []*plot.Plot{}
	lp, err := linePlot("Training loss", "loss", loss, color.RGBA{R: 31, G: 119, B: 180, A: 255})
	if err != nil {
		return nil, err
	}
	plots = append(plots, lp)
	if len(valid) > 0 {
		vp, err := linePlot("Validation Recall@10", "recall@10", valid, color.RGBA{R: 214, G: 39, B: 40, A: 255})
		if err != nil {
			return nil, err
		}
		plots = append(plots, vp)
	}
	const w, h = 5 * vg.Inch, 3.5 * vg.Inch
	canvas := vgsvg.New(w*vg.Length(len(plots)), h)
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4}
	for i, p := range plots {
		p.Draw(tiles.At(dc, i, 0))
	}
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return buf.Bytes(), nil
}

func linePlot(title, ylabel string, pts plotter.XYs, c color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	l.Color = c
	s.Color = c
	p.Add(l, s)
	return p, nil
}
