package worker

import "github.com/stella-ops/orchestrator/clients/go/stellarpc"

// Reconnect backoff defaults: the ceiling starts at 0.1 s and doubles up to 10 s.
const (
	ReconnectInitialS   = stellarpc.ReconnectInitialS
	ReconnectCapS       = stellarpc.ReconnectCapS
	ReconnectMultiplier = stellarpc.ReconnectMultiplier
)

// Backoff yields reconnect delays with full jitter (stellarpc.Backoff, shared with the
// producer client and checked against tests/vectors/backoff.json).
type Backoff = stellarpc.Backoff

// SplitMix64 is the seeded generator every SDK implements identically (stellarpc.SplitMix64).
type SplitMix64 = stellarpc.SplitMix64

// NewBackoff returns the default schedule drawing from rand (nil: seeded from the clock).
func NewBackoff(rand func() float64) *Backoff { return stellarpc.NewBackoff(rand) }

// NewSplitMix64 seeds a generator.
func NewSplitMix64(seed uint64) *SplitMix64 { return stellarpc.NewSplitMix64(seed) }
