import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Point } from "./api";

/** Seconds each plotted point averages over: per-tick counts are spiky, a 10 s mean reads as a rate. */
const SMOOTH_S = 10;

/** Items/s done and failed over the last hour, each tick's value the mean of the 10 s up to it (trailing window). */
function toSeries(points: Point[], tickMs: number): [number[], number[], number[]] {
  const per = Math.max(1, Math.round((SMOOTH_S * 1000) / tickMs));
  const xs: number[] = [];
  const ok: number[] = [];
  const bad: number[] = [];
  let sumOk = 0;
  let sumBad = 0;
  // uPlot needs at least one x to draw axes from.
  if (points.length === 0) return [[Date.now() / 1000], [0], [0]];
  points.forEach((p, i) => {
    sumOk += p[1];
    sumBad += p[2];
    if (i >= per) {
      sumOk -= points[i - per]![1];
      sumBad -= points[i - per]![2];
    }
    const span = (Math.min(i + 1, per) * tickMs) / 1000;
    xs.push(p[0] / 1000);
    ok.push(sumOk / span);
    bad.push(sumBad / span);
  });
  return [xs, ok, bad];
}

export function ThroughputChart({ points, tickMs }: { points: Point[]; tickMs: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const node = el.current!;
    const opts: uPlot.Options = {
      width: node.clientWidth || 600,
      height: 220,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      // The last hour, or since the server started when that is less: a fresh server's first minutes fill the width.
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            // A server with no samples yet gives no bounds: show the minute up to now.
            const hi = Number.isFinite(max) ? max : Date.now() / 1000;
            const lo = Number.isFinite(min) ? min : hi;
            return [Math.max(lo, hi - 3600), Math.max(hi, lo + 60)];
          },
        },
        y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] },
      },
      axes: [
        { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" } },
        { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" }, label: "items/s", labelSize: 18, size: 56 },
      ],
      series: [
        {},
        { label: "succeeded/s", stroke: "#10b981", width: 2, fill: "rgba(16,185,129,0.12)", points: { show: false }, value: (_u, v) => (v === null ? "—" : v.toFixed(1)) },
        { label: "failed/s", stroke: "#ef4444", width: 2, fill: "rgba(239,68,68,0.10)", points: { show: false }, value: (_u, v) => (v === null ? "—" : v.toFixed(1)) },
      ],
    };
    plot.current = new uPlot(opts, toSeries(points, tickMs), node);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: node.clientWidth, height: 220 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(toSeries(points, tickMs));
  }, [points, tickMs]);
  return <div class="chart" ref={el} data-testid="throughput-chart" />;
}
