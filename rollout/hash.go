package rollout

import "math/bits"

// Buckets is the number of buckets keys are hashed into. A percent p
// enables the keys whose bucket is below p × 10⁴, so one bucket is 0.0001%.
const Buckets = 1_000_000

// The hash is specified on Bucket and pinned by golden vectors in the tests.
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
// that a Gate with that salt compares with its percent × 10⁴. A key is
// enabled at percent p when its bucket is below p × 10⁴, so a key enabled
// at p is enabled at every p' > p, and gates with different salts enable
// independent sets of keys.
//
// Every process, architecture and release maps a key to the same bucket:
// the mapping, version v1, is specified here and pinned by golden vectors
// in the tests. To reproduce it in another language:
//
//  1. Encode three components in order: the string "v1", the salt (the
//     gate's name unless WithSalt is used) and the key. Each component is
//     its length in bytes as an unsigned LEB128 varint (Go's
//     binary.AppendUvarint: 7 bits at a time, low bits first, high bit set
//     on every byte but the last), followed by its bytes. Strings are taken
//     as raw bytes (Go strings are usually UTF-8); nothing is normalized.
//  2. Hash the encoded bytes with 64-bit FNV-1a: h = 14695981039346656037;
//     for each byte b: h = (h XOR b) × 1099511628211 mod 2⁶⁴.
//  3. Finalize with the splitmix64 mixer:
//     h = (h XOR h>>30) × 0xbf58476d1ce4e5b9;
//     h = (h XOR h>>27) × 0x94d049bb133111eb;
//     h = h XOR h>>31 (all mod 2⁶⁴).
//  4. The bucket is the high 64 bits of the 128-bit product h × 1000000,
//     a number in [0, 1000000).
//
// Enabled computes the same mapping with the salt's part precomputed.
func Bucket(salt, key string) uint32 {
	return bucketOf(seedFor(salt), key)
}
