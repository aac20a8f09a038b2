package stellarpc

import (
	"math"
	"time"
)

// Reconnect backoff defaults: the ceiling starts at 0.1 s and doubles up to 10 s.
const (
	ReconnectInitialS   = 0.1
	ReconnectCapS       = 10.0
	ReconnectMultiplier = 2.0
)

// Backoff yields delays for successive reconnect attempts (a worker's Work stream, a
// producer's event watch): attempt n (from 0) sleeps uniform(0, min(cap,
// initial·multiplier^n)) seconds. Full jitter spreads a fleet that lost
// the same server over the whole window instead of reconnecting in lock-step waves.
//
// The draw is ceiling·u with u from Rand, the same arithmetic as the Python
// and Rust SDKs, so a seeded SplitMix64 gives the same schedule bit for bit in all three
// (tests/vectors/backoff.json).
type Backoff struct {
	InitialS   float64        // ceiling of the first delay, seconds
	CapS       float64        // largest ceiling, seconds
	Multiplier float64        // growth of the ceiling per attempt
	Rand       func() float64 // uniform in [0, 1)
	attempt    int
}

// NewBackoff returns the default schedule drawing from rand (nil: a SplitMix64 seeded from
// the clock).
func NewBackoff(rand func() float64) *Backoff {
	if rand == nil {
		rand = NewSplitMix64(uint64(time.Now().UnixNano())).Float64
	}
	return &Backoff{InitialS: ReconnectInitialS, CapS: ReconnectCapS, Multiplier: ReconnectMultiplier, Rand: rand}
}

// Ceiling is the upper bound in seconds of the delay of attempt n (from 0).
func (b *Backoff) Ceiling(n int) float64 {
	// Cap the exponent too, so a long outage cannot overflow.
	return math.Min(b.CapS, b.InitialS*math.Pow(b.Multiplier, float64(min(n, 64))))
}

// NextSeconds is the delay in seconds before the next attempt; it advances the counter.
func (b *Backoff) NextSeconds() float64 {
	ceiling := b.Ceiling(b.attempt)
	b.attempt++
	return ceiling * b.Rand()
}

// Next is NextSeconds as a Duration.
func (b *Backoff) Next() time.Duration {
	return time.Duration(b.NextSeconds() * float64(time.Second))
}

// Reset starts over after a healthy session.
func (b *Backoff) Reset() { b.attempt = 0 }

// SplitMix64 is a tiny seeded generator (Steele, Lea & Flood 2014) that every SDK implements
// identically, so backoff schedules can be compared across languages.
type SplitMix64 struct{ state uint64 }

// NewSplitMix64 seeds a generator.
func NewSplitMix64(seed uint64) *SplitMix64 { return &SplitMix64{state: seed} }

// Uint64 returns the next 64 random bits.
func (s *SplitMix64) Uint64() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Float64 returns a uniform float in [0, 1) from the top 53 bits.
func (s *SplitMix64) Float64() float64 {
	return float64(s.Uint64()>>11) * (1.0 / (1 << 53))
}
