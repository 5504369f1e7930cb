// The policy error catalogue: stable codes for what evaluating or translating authorization can fail at.
// Empty for now: policy decides (allow or deny) and raises nothing; a denial is reported by the proxy
// that enforces it. A code policy comes to raise goes here.

export const POLICY_ERRORS = {} as const;
