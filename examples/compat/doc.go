// Command compat shows blastradius's compat decoders: three generations of a
// token format decoding into today's type, one of them past its sunset, and
// a JSON field that changed from an array to an object read with
// compat.OneOrMany. It prints what each input decoded as, the warning
// logged (through a log budget) for the version past its sunset, the
// decoder's per-version counts, and the compat metrics through an
// OpenTelemetry ManualReader, and exits.
package main
