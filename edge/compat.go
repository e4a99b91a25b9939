package edge

// classifyCompat maps the compat package's sentinels; until compat lands,
// every other error is invalid.
func classifyCompat(err error) Reason {
	return ReasonInvalid
}
