package rollout

import "math/bits"

// Buckets is the number of buckets keys are hashed into. A percent p
// enables the keys whose bucket is below p × 10⁴, so one bucket is 0.0001%.
const Buckets = 1_000_000

// The hash is specified in doc.go and pinned by golden vectors in the tests.
// Changing anything here reshuffles every user in production.
const (
	hashVersion = "v1"
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// absorb feeds the uvarint length of s, then the bytes of s, into the
// FNV-1a 64 state h. It reads the string in place and never allocates.
func absorb(h uint64, s string) uint64 {
	n := uint64(len(s))
	for n >= 0x80 {
		h ^= n&0x7f | 0x80
		h *= fnvPrime64
		n >>= 7
	}
	h ^= n
	h *= fnvPrime64
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// seedFor is the FNV-1a state after the version and salt components. A gate
// computes it once, so Enabled hashes only the key.
func seedFor(salt string) uint64 {
	return absorb(absorb(fnvOffset64, hashVersion), salt)
}

// mix64 is the splitmix64 finalizer (Stafford's Mix13).
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// bucketOf maps key to a bucket in [0, Buckets) by multiply-shift: the high
// 64 bits of the 128-bit product mix64(h) × Buckets.
func bucketOf(seed uint64, key string) uint32 {
	hi, _ := bits.Mul64(mix64(absorb(seed, key)), Buckets)
	return uint32(hi)
}

// Bucket returns the bucket in [0, Buckets) of key under salt: the number
// that a Gate with that salt compares with its percent × 10⁴. It is the
// published, versioned mapping described in the package documentation and
// is stable across processes, architectures and releases.
func Bucket(salt, key string) uint32 {
	return bucketOf(seedFor(salt), key)
}
