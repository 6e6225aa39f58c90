package verify

// SetLeaseProgram replaces, for a test, what gives the lease program for
// an architecture (nil: the lease runs from the probe image), and returns
// what restores it.
func SetLeaseProgram(f func(goarch string) []byte) (restore func()) {
	old := leaseProgramFor
	leaseProgramFor = f
	return func() { leaseProgramFor = old }
}
