package appliance

import "time"

// historyInterval is the spacing of the chart samples; historyLength of
// them cover the chart's hour.
const (
	historyInterval = 10 * time.Second
	historyLength   = int(time.Hour/historyInterval) + 1
)

// historyPoint is one sample of the in-memory history.
type historyPoint struct {
	at        time.Time
	pending   uint64
	committed int64
}

// history keeps the last hour of samples in memory. It starts empty at
// every start of the appliance: the charts show what this process saw.
type history struct {
	points []historyPoint
}

// add records a sample unless the last one is younger than historyInterval.
func (h *history) add(now time.Time, pending uint64, committed int64) {
	if n := len(h.points); n > 0 && now.Sub(h.points[n-1].at) < historyInterval {
		return
	}
	h.points = append(h.points, historyPoint{at: now, pending: pending, committed: committed})
	if len(h.points) > historyLength {
		h.points = append(h.points[:0], h.points[len(h.points)-historyLength:]...)
	}
}

// rate returns the visits committed per minute over the window ending
// now, or over the time since the first sample when that is shorter.
func (h *history) rate(now time.Time, window time.Duration, committed int64) float64 {
	if len(h.points) == 0 {
		return 0
	}
	from := h.points[0]
	for _, p := range h.points {
		if now.Sub(p.at) < window {
			break
		}
		from = p
	}
	span := now.Sub(from.at)
	if span < time.Second {
		return 0
	}
	return float64(committed-from.committed) / span.Minutes()
}

// status returns the samples for /status.json and the charts, each with
// the commit rate since the sample before it.
func (h *history) status() HistoryStatus {
	hs := HistoryStatus{IntervalSeconds: historyInterval.Seconds(), Samples: make([]HistorySample, 0, len(h.points))}
	for i, p := range h.points {
		sample := HistorySample{At: p.at.UTC(), Pending: p.pending}
		if i > 0 {
			prev := h.points[i-1]
			if span := p.at.Sub(prev.at); span > 0 {
				sample.CommittedPerMinute = float64(p.committed-prev.committed) / span.Minutes()
			}
		}
		hs.Samples = append(hs.Samples, sample)
	}
	return hs
}
