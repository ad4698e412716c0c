package benchutil

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one named sample of durations.
type Series struct {
	Name   string
	Values []time.Duration
}

// logFloor keeps zero values plottable on a log axis.
const logFloor = 1e-4

// BoxPlotSeconds writes a PNG box plot (log-scale seconds) of each series.
func BoxPlotSeconds(path, title, ylabel string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	w := vg.Points(28)
	names := make([]string, len(series))
	for i, s := range series {
		vals := make(plotter.Values, len(s.Values))
		for j, d := range s.Values {
			vals[j] = max(d.Seconds(), logFloor)
		}
		if len(vals) == 0 {
			vals = plotter.Values{logFloor}
		}
		b, err := plotter.NewBoxPlot(w, float64(i), vals)
		if err != nil {
			return fmt.Errorf("box plot %s: %w", s.Name, err)
		}
		b.FillColor = plotutil.Color(i)
		p.Add(b)
		names[i] = s.Name
	}
	p.NominalX(names...)
	p.Add(plotter.NewGrid())
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// BarPlot writes a PNG bar chart of one value per name; logY for ranges
// spanning orders of magnitude.
func BarPlot(path, title, ylabel string, names []string, values []float64, logY bool) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	vals := make(plotter.Values, len(values))
	for i, v := range values {
		vals[i] = v
		if logY {
			vals[i] = max(v, 0.1)
		}
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(36))
	if err != nil {
		return fmt.Errorf("bar chart: %w", err)
	}
	bars.Color = color.RGBA{R: 66, G: 133, B: 244, A: 255}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		bars.Offset = 0
		p.Y.Min = 0.1
	}
	p.Add(bars)
	p.NominalX(names...)
	p.Add(plotter.NewGrid())
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: barXYs(vals), Labels: formatVals(values)})
	if err == nil {
		p.Add(labels)
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// LinePlot writes a PNG with one line per series over shared x values;
// logX and logY switch the axes to log scale (values must be positive).
func LinePlot(path, title, xlabel, ylabel string, x []float64, series map[string][]float64, order []string, logX, logY bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	var args []any
	for _, name := range order {
		ys := series[name]
		pts := make(plotter.XYs, 0, len(ys))
		for i, y := range ys {
			if i < len(x) {
				if logY {
					y = max(y, 1e-3)
				}
				pts = append(pts, plotter.XY{X: x[i], Y: y})
			}
		}
		args = append(args, name, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("line plot: %w", err)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func barXYs(v plotter.Values) plotter.XYs {
	xy := make(plotter.XYs, len(v))
	for i, y := range v {
		xy[i] = plotter.XY{X: float64(i), Y: y}
	}
	return xy
}

func formatVals(v []float64) []string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmt.Sprintf("%.3g", f)
	}
	return s
}
