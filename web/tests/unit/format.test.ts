import { describe, expect, it } from "vitest";
import { formatAge, formatCount, formatLatencyUs, formatRatio, formatValue, chartValue, tickDecimals } from "../../src/format";

describe("latency", () => {
  it("keeps microseconds below 1 ms", () => {
    expect(formatLatencyUs(216)).toBe("216 µs");
    expect(formatLatencyUs(999.4)).toBe("999 µs");
    expect(formatLatencyUs(0)).toBe("0 µs");
  });
  it("switches to milliseconds with three significant digits", () => {
    expect(formatLatencyUs(1300)).toBe("1.30 ms");
    expect(formatLatencyUs(4000)).toBe("4.00 ms");
    expect(formatLatencyUs(12_500)).toBe("12.5 ms");
    expect(formatLatencyUs(250_000)).toBe("250 ms");
  });
  it("uses seconds from 1 s", () => {
    expect(formatLatencyUs(1_200_000)).toBe("1.20 s");
  });
});

describe("loss ratio", () => {
  it("formats tiny loss without an exponent", () => {
    expect(formatRatio(1e-5)).toBe("0.001 %");
    expect(formatRatio(1e-6)).toBe("0.0001 %");
    expect(formatRatio(1.5e-5)).toBe("0.0015 %");
  });
  it("formats ordinary loss with two decimals or three significant digits", () => {
    expect(formatRatio(0.001)).toBe("0.10 %");
    expect(formatRatio(0.0123)).toBe("1.23 %");
    expect(formatRatio(0.5)).toBe("50.0 %");
    expect(formatRatio(1)).toBe("100 %");
    expect(formatRatio(0)).toBe("0 %");
  });
});

describe("values by unit", () => {
  it("dispatches on the unit and shows no data for null", () => {
    expect(formatValue(216, "us")).toBe("216 µs");
    expect(formatValue(1e-5, "ratio")).toBe("0.001 %");
    expect(formatValue(1234567, "count")).toBe("1,234,567");
    expect(formatValue(null, "us")).toBe("no data");
    expect(formatValue(undefined, "ratio")).toBe("no data");
    expect(formatCount(360.4)).toBe("360");
  });
  it("formats ages", () => {
    expect(formatAge(0, 1000)).toBe("never");
    expect(formatAge(90_000, 100_000)).toBe("10 s ago");
    expect(formatAge(0 + 1, 1 + 5 * 60_000)).toBe("5 min ago");
  });
});

describe("chart ticks and values (loopback RTTs are ~0.01 ms)", () => {
  it("gives ticks enough decimals to differ", () => {
    expect(tickDecimals(0.002, 2)).toBe(3);
    expect(tickDecimals(0.0005, 2)).toBe(4);
    expect(tickDecimals(0.5, 2)).toBe(2);
    expect(tickDecimals(10, 2)).toBe(2);
    expect(tickDecimals(0, 2)).toBe(2);
    expect(tickDecimals(1e-12, 2)).toBe(6);
  });
  it("keeps small values visible", () => {
    expect(chartValue(0.0123, 2)).toBe("0.0123");
    expect(chartValue(1.234, 2)).toBe("1.23");
    expect(chartValue(0, 2)).toBe("0.00");
    expect(chartValue(0.0001234, 3)).toBe("0.000123");
  });
});
