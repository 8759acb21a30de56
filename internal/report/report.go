// Package report draws the training report: loss and validation Recall@10
// per epoch, as an SVG written next to the artifact so that a user sees how
// training went without reading logs.
//
// The two line charts are written by hand rather than with a plotting
// library: that keeps a font, PDF and image stack out of the server binary
// for one small picture.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/towerrecall/towerrecall/internal/train"
)

// Panel geometry in SVG user units (pixels): one chart per panel, side by
// side.
const (
	panelW, panelH                 = 480, 336
	marginL, marginR               = 64, 16
	marginT, marginB               = 36, 48
	plotW                          = panelW - marginL - marginR
	plotH                          = panelH - marginT - marginB
	lossColor, recallColor         = "#1f77b4", "#d62728"
	gridColor, axisColor           = "#dddddd", "#333333"
	font                           = "font-family=\"sans-serif\""
	targetTicks                    = 5
	minSpan                float64 = 1e-9
)

// point is one (epoch, value) pair.
type point struct{ x, y float64 }

// TrainingSVG renders the per-epoch training loss and, when validation ran,
// validation Recall@10, side by side.
func TrainingSVG(epochs []train.EpochStats) ([]byte, error) {
	if len(epochs) == 0 {
		return nil, errors.New("report: no epochs")
	}
	loss := make([]point, len(epochs))
	var valid []point
	for i, e := range epochs {
		loss[i] = point{float64(e.Epoch), e.Loss}
		if e.HasValid {
			valid = append(valid, point{float64(e.Epoch), e.Valid})
		}
	}
	for _, p := range append(loss, valid...) {
		if math.IsNaN(p.y) || math.IsInf(p.y, 0) {
			return nil, fmt.Errorf("report: epoch %g: value %g is not finite", p.x, p.y)
		}
	}
	panels := 1
	if len(valid) > 0 {
		panels = 2
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		panels*panelW, panelH, panels*panelW, panelH)
	fmt.Fprintf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n")
	chart(&b, 0, "Training loss", "loss", loss, lossColor)
	if len(valid) > 0 {
		chart(&b, panelW, "Validation Recall@10", "recall@10", valid, recallColor)
	}
	b.WriteString("</svg>\n")
	return b.Bytes(), nil
}

// chart writes one line chart with markers into the panel at x offset left.
func chart(b *bytes.Buffer, left int, title, ylabel string, pts []point, color string) {
	xlo, xhi := pts[0].x, pts[0].x
	ylo, yhi := pts[0].y, pts[0].y
	for _, p := range pts {
		xlo, xhi = min(xlo, p.x), max(xhi, p.x)
		ylo, yhi = min(ylo, p.y), max(yhi, p.y)
	}
	xt := ticks(xlo, xhi, true)
	yt := ticks(ylo, yhi, false)
	xlo, xhi = min(xlo, xt[0]), max(xhi, xt[len(xt)-1])
	ylo, yhi = min(ylo, yt[0]), max(yhi, yt[len(yt)-1])
	x0, y0 := float64(left+marginL), float64(marginT+plotH)
	sx := func(x float64) float64 { return x0 + (x-xlo)/(xhi-xlo)*plotW }
	sy := func(y float64) float64 { return y0 - (y-ylo)/(yhi-ylo)*plotH }

	fmt.Fprintf(b, "<g %s font-size=\"12\">\n", font)
	fmt.Fprintf(b, "<text x=\"%g\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n", x0+plotW/2, marginT-14, title)
	for _, t := range xt {
		x := sx(t)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%g\" stroke=\"%s\"/>\n", x, marginT, x, y0, gridColor)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", x, y0+16, label(t))
	}
	for _, t := range yt {
		y := sy(t)
		fmt.Fprintf(b, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0, y, x0+plotW, y, gridColor)
		fmt.Fprintf(b, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", x0-6, y+4, label(t))
	}
	fmt.Fprintf(b, "<rect x=\"%g\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"%s\"/>\n", x0, marginT, plotW, plotH, axisColor)
	fmt.Fprintf(b, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", x0+plotW/2, panelH-10)
	fmt.Fprintf(b, "<text transform=\"translate(%d %g) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", left+16, float64(marginT)+plotH/2, ylabel)
	fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color)
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(b, "%.1f,%.1f", sx(p.x), sy(p.y))
	}
	b.WriteString("\"/>\n")
	for _, p := range pts {
		fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"none\" stroke=\"%s\"/>\n", sx(p.x), sy(p.y), color)
	}
	b.WriteString("</g>\n")
}

// ticks returns about targetTicks evenly spaced round values (steps of 1, 2
// or 5 times a power of ten) covering [lo, hi]; integer steps when whole is
// set.
func ticks(lo, hi float64, whole bool) []float64 {
	if hi-lo < minSpan {
		pad := max(math.Abs(lo)*0.1, 0.5)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / (targetTicks - 1)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if whole {
		step = max(1, math.Round(step))
	}
	start := math.Floor(lo / step)
	var out []float64
	for i := 0.0; ; i++ {
		t := (start + i) * step
		out = append(out, t)
		if t >= hi {
			return out
		}
	}
}

// label formats a tick value compactly.
func label(v float64) string {
	if math.Abs(v) < 1e-12 {
		v = 0 // no "-0" or "1e-17" from accumulated steps
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
