package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot is one SVG file of the report.
type Plot struct {
	File    string // name inside the output directory
	Title   string // alt text
	Caption string
	SVG     []byte
	PNG     []byte // only with --png
}

// writePlots renders every plot results allow and writes them into dir,
// with a PNG copy of each when png is set.
func writePlots(dir string, r *Results, png bool) ([]Plot, error) {
	plots, err := renderPlots(r, png)
	if err != nil {
		return nil, err
	}
	for _, p := range plots {
		if err := os.WriteFile(filepath.Join(dir, p.File), p.SVG, 0o644); err != nil {
			return nil, fmt.Errorf("write plot: %w", err)
		}
		if p.PNG != nil {
			name := strings.TrimSuffix(p.File, ".svg") + ".png"
			if err := os.WriteFile(filepath.Join(dir, name), p.PNG, 0o644); err != nil {
				return nil, fmt.Errorf("write plot: %w", err)
			}
		}
	}
	return plots, nil
}

// renderPlots draws the plots in memory; a section without data has none.
func renderPlots(r *Results, png bool) ([]Plot, error) {
	var out []Plot
	add := func(file, title, caption string, panels []*plot.Plot, cols int) error {
		if len(panels) == 0 {
			return nil
		}
		svg, err := tile(func(w, h vg.Length) vg.CanvasWriterTo { return vgsvg.New(w, h) }, panels, cols)
		if err != nil {
			return fmt.Errorf("plot %s: %w", file, err)
		}
		p := Plot{File: file, Title: title, Caption: caption, SVG: svg}
		if png {
			newPNG := func(w, h vg.Length) vg.CanvasWriterTo {
				return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))}
			}
			if p.PNG, err = tile(newPNG, panels, cols); err != nil {
				return fmt.Errorf("plot %s: %w", file, err)
			}
		}
		out = append(out, p)
		return nil
	}
	tp, err := trainingPanels(r.Training)
	if err != nil {
		return nil, err
	}
	if err := add("bench-training.svg", "Training loss and validation Recall@10 per epoch",
		"Training loss per epoch of every run (softmax loss and the reference recipe's MSE on separate axes), and validation Recall@10 where the split has a validation set.",
		tp, len(tp)); err != nil {
		return nil, err
	}
	ip, err := indexPanels(r.Index)
	if err != nil {
		return nil, err
	}
	if err := add("bench-index.svg", "HNSW recall against exact vs latency per query",
		"One point per HNSW search setting, one line per graph build; the black square is the exact scan (recall 1 by definition). Latency axis is logarithmic.",
		ip, 2); err != nil {
		return nil, err
	}
	if len(r.Handler) > 0 {
		var names []string
		var sets [][]time.Duration
		for _, h := range r.Handler {
			names = append(names, h.Backend+" index")
			sets = append(sets, h.Latencies)
		}
		p, err := histogramPlot("/recall handler latency (in-process, sequential)", names, sets)
		if err != nil {
			return nil, err
		}
		if err := add("bench-handler.svg", "/recall handler latency histogram",
			"Share of requests per latency bin (logarithmic bins) through the full HTTP handler; the slowest 0.1 % are beyond the right edge.",
			[]*plot.Plot{p}, 1); err != nil {
			return nil, err
		}
	}
	if r.Load != nil && len(r.Load.Runs) > 0 {
		var names []string
		var sets [][]time.Duration
		for _, lr := range r.Load.Runs {
			names = append(names, lr.Name)
			sets = append(sets, lr.Latencies)
		}
		p, err := histogramPlot(fmt.Sprintf("Loopback load, %d connections", r.Load.Connections), names, sets)
		if err != nil {
			return nil, err
		}
		if err := add("bench-load.svg", "Loopback load latency histogram",
			"Share of requests per latency bin (logarithmic bins) under saturating closed-loop load; the slowest 0.1 % are beyond the right edge.",
			[]*plot.Plot{p}, 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// palette is a colour-blind-safe qualitative palette (Okabe–Ito).
func palette(i int) color.Color {
	cs := []color.RGBA{
		{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
		{230, 159, 0, 255}, {86, 180, 233, 255}, {0, 0, 0, 255},
	}
	return cs[i%len(cs)]
}

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, i int) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = palette(i), palette(i)
	s.Shape = draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

func trainingPanels(runs []TrainRun) ([]*plot.Plot, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	loss := newPanel("Training loss (softmax, default recipe)", "epoch", "loss")
	valid := newPanel("Validation Recall@10", "epoch", "recall@10")
	mse := newPanel("Training loss (pointwise reference)", "epoch", "MSE on ratings scaled to [0, 1]")
	var nLoss, nValid, nMSE int
	for i, r := range runs {
		name := datasetLabel(r.Dataset) + " " + r.Split
		var lp, vp plotter.XYs
		for _, e := range r.Epochs {
			lp = append(lp, plotter.XY{X: float64(e.Epoch), Y: e.Loss})
			if e.HasValid {
				vp = append(vp, plotter.XY{X: float64(e.Epoch), Y: e.Valid})
			}
		}
		if len(lp) == 0 {
			continue
		}
		target, n := loss, &nLoss
		if r.Recipe == "pointwise" {
			target, n = mse, &nMSE
		}
		if err := addLine(target, name, lp, i); err != nil {
			return nil, err
		}
		*n++
		if len(vp) > 0 {
			if err := addLine(valid, name, vp, i); err != nil {
				return nil, err
			}
			nValid++
		}
	}
	loss.Legend.Top, mse.Legend.Top = true, true
	var out []*plot.Plot
	for _, pn := range []struct {
		p *plot.Plot
		n int
	}{{loss, nLoss}, {valid, nValid}, {mse, nMSE}} {
		if pn.n > 0 {
			out = append(out, pn.p)
		}
	}
	return out, nil
}

func indexPanels(benches []IndexBench) ([]*plot.Plot, error) {
	var out []*plot.Plot
	for _, ib := range benches {
		for _, k := range []int{10, 100} {
			p := newPanel(fmt.Sprintf("%s, %s × %d: recall@%d", ib.Name, thousands(ib.N), ib.Dim, k),
				"median latency per query", fmt.Sprintf("recall@%d vs exact", k))
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = ticks125{}
			var builds []string
			byBuild := map[string]plotter.XYs{}
			for _, row := range ib.Rows {
				if _, ok := byBuild[row.Build]; !ok {
					builds = append(builds, row.Build)
				}
				lat, rec := row.Lat10, row.Recall10
				if k == 100 {
					lat, rec = row.Lat100, row.Recall100
				}
				byBuild[row.Build] = append(byBuild[row.Build], plotter.XY{X: micros(lat), Y: rec})
			}
			for i, b := range builds {
				pts := byBuild[b]
				slices.SortFunc(pts, func(a, b plotter.XY) int { return compareFloat(a.X, b.X) })
				if err := addLine(p, b, pts, i); err != nil {
					return nil, err
				}
			}
			ex := ib.Exact10
			if k == 100 {
				ex = ib.Exact100
			}
			s, err := plotter.NewScatter(plotter.XYs{{X: micros(ex), Y: 1}})
			if err != nil {
				return nil, err
			}
			s.Shape = draw.BoxGlyph{}
			s.Color = color.Black
			s.Radius = vg.Points(4)
			p.Add(s)
			p.Legend.Add("exact scan", s)
			// Pad the logarithmic axis so edge points are not drawn on it.
			lo, hi := micros(ex), micros(ex)
			for _, pts := range byBuild {
				for _, pt := range pts {
					lo, hi = math.Min(lo, pt.X), math.Max(hi, pt.X)
				}
			}
			p.X.Min, p.X.Max = lo/1.4, hi*1.4
			p.Legend.Top = false
			p.Legend.Left = false
			out = append(out, p)
		}
	}
	return out, nil
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func micros(d time.Duration) float64 { return math.Max(float64(d)/1e3, 1e-3) }

// histogramPlot draws each latency sample as a step line of the share of
// requests in common logarithmic bins from the smallest value to the
// largest p99.9.
func histogramPlot(title string, names []string, sets [][]time.Duration) (*plot.Plot, error) {
	lo, hi := math.Inf(1), 0.0
	for _, s := range sets {
		if len(s) == 0 {
			continue
		}
		sorted := slices.Clone(s)
		slices.Sort(sorted)
		lo = math.Min(lo, micros(sorted[0]))
		hi = math.Max(hi, micros(sortedPercentile(sorted, 0.999)))
	}
	p := newPanel(title, "latency", "share of requests")
	if math.IsInf(lo, 1) || hi <= 0 {
		return p, nil
	}
	if hi <= lo*1.01 {
		hi = lo * 2
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	const bins = 60
	step := math.Log(hi/lo) / bins
	top := 0.0
	for i, s := range sets {
		counts := make([]float64, bins)
		for _, d := range s {
			v := micros(d)
			if v < lo || v > hi {
				continue
			}
			b := min(int(math.Log(v/lo)/step), bins-1)
			counts[b]++
		}
		pts := make(plotter.XYs, 0, bins+1)
		for b := range bins {
			pts = append(pts, plotter.XY{X: lo * math.Exp(float64(b)*step), Y: counts[b] / float64(max(len(s), 1))})
		}
		pts = append(pts, plotter.XY{X: hi, Y: pts[bins-1].Y})
		for _, pt := range pts {
			top = math.Max(top, pt.Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep
		l.Color = palette(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(names[i], l)
	}
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = 0, top*(1.15+0.1*float64(len(sets))) // room for the legend
	return p, nil
}

// ticks125 marks 1, 2 and 5 times powers of ten on a logarithmic axis of
// microseconds (only 1× labelled when the axis spans more than two decades),
// labelled in µs below 1 ms and in ms above.
type ticks125 struct{}

func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	if lo <= 0 || hi <= lo {
		return ts
	}
	wide := math.Log10(hi/lo) > 2
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		base := math.Pow(10, e)
		for _, m := range []float64{1, 2, 5} {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || !wide {
				t.Label = microsLabel(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

func microsLabel(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'g', -1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'g', -1, 64) + " µs"
}

// tile draws panels in cols columns onto one canvas made by newCanvas.
func tile(newCanvas func(w, h vg.Length) vg.CanvasWriterTo, panels []*plot.Plot, cols int) ([]byte, error) {
	const w, h = 5.5 * vg.Inch, 3.8 * vg.Inch
	cols = max(1, min(cols, len(panels)))
	rows := (len(panels) + cols - 1) / cols
	canvas := newCanvas(w*vg.Length(cols), h*vg.Length(rows))
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4}
	for i, p := range panels {
		p.Draw(tiles.At(dc, i%cols, i/cols))
	}
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
