import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  /** null: no value for that hour (a gap). */
  values: (number | null)[];
  color: string;
}

/** A uPlot line chart over hourly buckets (x in Unix seconds). Lazy-loaded: uPlot stays out of the first chunk. */
export default function TimeChart({ title, x, series, height = 220 }: { title: string; x: number[]; series: Series[]; height?: number }) {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const opts: uPlot.Options = {
      title,
      width: Math.max(el.clientWidth, 280),
      height,
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: x.length < 50 } }))],
    };
    const chart = new uPlot(opts, [x, ...series.map((s) => s.values)], el);
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 280), height }));
    observer?.observe(el);
    return () => {
      observer?.disconnect();
      chart.destroy();
    };
  }, [title, x, series, height]);

  return <div ref={container} className="chart" role="img" aria-label={`${title} (chart; the figures are in the table below it)`} />;
}
