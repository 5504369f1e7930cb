// The telemetry error catalogue: stable codes for what metrics and access logging can fail at.
// Empty for now: telemetry raises nothing (a metric or log line never fails a connection). A code
// telemetry comes to raise goes here.

export const TELEMETRY_ERRORS = {} as const;
