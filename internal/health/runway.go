package health

// Runway estimates how many days the free space of a store lasts when
// visits keep arriving at the rate of the last 24 hours. It returns nil
// when no visit arrived in that time, because then the store does not
// fill at all.
func Runway(freeBytes uint64, visitsLastDay uint64, bytesPerVisit float64) *float64 {
	if visitsLastDay == 0 || bytesPerVisit <= 0 {
		return nil
	}
	days := float64(freeBytes) / (float64(visitsLastDay) * bytesPerVisit)
	return &days
}
