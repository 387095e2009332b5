package maglev

// The functions in this file define each backend's permutation of the table
// slots. They are part of the table's contract (see the package
// documentation): changing any constant or step changes every table, and two
// directors running different versions would then send the same flow to
// different backends.

const (
	fnvOffset64 = 14695981039346656037 // FNV-1a 64-bit offset basis
	fnvPrime64  = 1099511628211        // FNV-1a 64-bit prime

	splitmixGamma = 0x9e3779b97f4a7c15 // SplitMix64 increment (golden ratio)
)

// fnv1a64 returns the 64-bit FNV-1a hash of the bytes of s. It is written out
// rather than taken from hash/fnv so that hashing a name does not allocate.
func fnv1a64(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// splitmix64 returns the SplitMix64 output for state x, the state already
// advanced by the gamma. Its finaliser spreads every input bit over the
// whole word, which FNV-1a alone does poorly for names that differ only in
// their last byte ("198.18.0.21", "198.18.0.22").
func splitmix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// permutation returns where the backend called name starts in a table of
// size m (a prime) and the step it walks by: its preference list is offset,
// offset+skip, offset+2*skip, ... modulo m. Because m is prime and skip is in
// [1, m-1], the list visits every slot exactly once.
func permutation(name string, m uint32) (offset, skip uint32) {
	state := fnv1a64(name)
	state += splitmixGamma
	offset = uint32(splitmix64(state) % uint64(m))
	state += splitmixGamma
	skip = uint32(splitmix64(state)%uint64(m-1)) + 1
	return offset, skip
}

// isPrime reports whether n is prime. Trial division is exact and cheap for
// table sizes up to MaxSize (at most 2048 divisions).
func isPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := uint32(3); d <= n/d; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}
