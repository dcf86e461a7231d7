package statuspage

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// Point is one sample of a chart.
type Point struct {
	At    time.Time
	Value float64
}

// Chart geometry in SVG user units; the SVG scales to its container.
const (
	chartWidth  = 320
	chartHeight = 120
	chartLeft   = 8
	chartRight  = 312
	chartTop    = 16
	chartBottom = 100
)

// ChartWindow is the time span a chart shows, ending now.
const ChartWindow = time.Hour

// Chart draws points of the last hour as an inline SVG line with a filled
// area under it, labelled with its title and largest value. The y axis
// starts at zero. It needs no script and no external library.
func Chart(title string, points []Point) template.HTML {
	now := Now()
	start := now.Add(-ChartWindow)
	top := 0.0
	for _, p := range points {
		if !p.At.Before(start) {
			top = max(top, p.Value)
		}
	}
	scale := top
	if scale == 0 {
		scale = 1
	}

	var line strings.Builder
	first, last := -1.0, -1.0
	for _, p := range points {
		if p.At.Before(start) {
			continue
		}
		x := chartLeft + (chartRight-chartLeft)*p.At.Sub(start).Seconds()/ChartWindow.Seconds()
		y := chartBottom - (chartBottom-chartTop)*p.Value/scale
		if first < 0 {
			first = x
		}
		last = x
		fmt.Fprintf(&line, "%.1f,%.1f ", x, y)
	}

	var b strings.Builder
	label := html.EscapeString(title)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s, last hour">`, chartWidth, chartHeight, label)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, chartLeft, chartBottom, chartRight, chartBottom)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, chartLeft, chartTop, chartRight, chartTop)
	if line.Len() > 0 {
		pts := strings.TrimSpace(line.String())
		fmt.Fprintf(&b, `<polygon class="area" points="%.1f,%d %s %.1f,%d"/>`, first, chartBottom, pts, last, chartBottom)
		fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, pts)
	}
	fmt.Fprintf(&b, `<text x="%d" y="11">max %s</text>`, chartLeft, html.EscapeString(trimFloat(top)))
	fmt.Fprintf(&b, `<text x="%d" y="116">60 min ago</text>`, chartLeft)
	fmt.Fprintf(&b, `<text x="%d" y="116" text-anchor="end">now</text>`, chartRight)
	b.WriteString(`</svg>`)
	// Every value written above is a number or escaped text.
	return template.HTML(b.String())
}

func trimFloat(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}
