r"""Scoring a modelled tsunami against the Tohoku gauges, and plotting the comparison.

A modelled elevation series at a gauge is compared with the gauge's de-tided record
(:class:`um2n_simulations.tohoku_data.Gauge`) in the gauge's time window, the model
interpolated linearly to the observation times (:func:`score_gauge`):

* arrival time: the first time :math:`\eta` reaches ``ARRIVAL_FRACTION`` (20 %) of the
  series' own peak :math:`\max\eta` in the window (model and observation each against their
  own peak): the arrival of the leading crest, not disturbed by the initial subsidence near
  the coast, nor by the seismic noise of the first minutes of the pressure records;
* peak amplitude: :math:`\max\eta` in the window, and the ratio model / observed;
* correlation: Pearson's.

A gauge has a *clear signal* when its observed :math:`|\eta|` reaches ``CLEAR_SIGNAL``
(0.1 m) in the window. :func:`summarise` reduces the scores of a run to its acceptance
figures: the largest arrival error at the clear gauges, the peak ratios at the near-field GPS
buoys (names ``80x``), and the mean correlation. :func:`plot_gauges` draws observed against
modelled elevation, one panel per gauge.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from um2n_simulations.tohoku_data import Gauge
from um2n.io import save_figure

#: the clear-signal threshold (m) and the arrival threshold (fraction of the own peak)
CLEAR_SIGNAL = 0.1
ARRIVAL_FRACTION = 0.2


@dataclass
class GaugeScore:
    """The comparison of one gauge (module docstring); times in s, the arrival error in minutes."""

    name: str
    clear_signal: bool
    arrival_observed: float | None
    arrival_model: float | None
    arrival_error_min: float | None
    peak_observed: float
    peak_model: float
    peak_ratio: float
    correlation: float

    def as_dict(self) -> dict:
        return asdict(self)


def _arrival(t: np.ndarray, e: np.ndarray) -> float | None:
    peak = e.max()
    if peak <= 0:
        return None
    hit = np.nonzero(e >= ARRIVAL_FRACTION * peak)[0]
    return float(t[hit[0]]) if hit.size else None


def score_gauge(g: Gauge, t_model: np.ndarray, eta_model: np.ndarray) -> GaugeScore | None:
    """Compare a modelled series with a gauge's record in the gauge's window (module docstring);
    ``None`` when the run does not reach the window."""
    tw = (g.time >= g.start) & (g.time <= min(g.end, t_model[-1]))
    if tw.sum() < 2:
        return None
    t_obs, e_obs = g.time[tw], g.elev[tw]
    e_mod = np.interp(t_obs, t_model, eta_model)
    a_obs, a_mod = _arrival(t_obs, e_obs), _arrival(t_obs, e_mod)
    corr = float(np.corrcoef(e_obs, e_mod)[0, 1]) if e_mod.std() > 0 and e_obs.std() > 0 else float("nan")
    p_obs, p_mod = float(e_obs.max()), float(e_mod.max())
    return GaugeScore(name=g.name, clear_signal=bool(np.abs(e_obs).max() >= CLEAR_SIGNAL),
                      arrival_observed=a_obs, arrival_model=a_mod,
                      arrival_error_min=None if a_obs is None or a_mod is None else (a_mod - a_obs) / 60.0,
                      peak_observed=p_obs, peak_model=p_mod, peak_ratio=p_mod / p_obs if p_obs > 0 else float("nan"),
                      correlation=corr)


def summarise(scores: dict[str, GaugeScore]) -> dict:
    """The acceptance figures of a run: arrival errors at clear gauges, near-field GPS peaks."""
    clear = [s for s in scores.values() if s.clear_signal and s.arrival_error_min is not None]
    gps = [s for name, s in scores.items() if name.startswith("80")]
    return {"max_abs_arrival_error_min": max((abs(s.arrival_error_min) for s in clear), default=float("nan")),
            "clear_gauges": [s.name for s in clear],
            "gps_peak_ratios": {s.name: s.peak_ratio for s in gps},
            "gps_peaks_within_factor_2": all(0.5 <= s.peak_ratio <= 2.0 for s in gps if s.clear_signal),
            "mean_correlation": float(np.nanmean([s.correlation for s in scores.values()]))}


def plot_gauges(gauges: list[Gauge], t: np.ndarray, series: dict, scores: dict, path: Path, title: str) -> None:
    """Observed against modelled elevation at every gauge (one panel each), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(gauges)
    cols = 4
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(16, 2.6 * math.ceil(n / cols)), squeeze=False)
    for ax, g in zip(axes.ravel(), gauges):
        w = (g.time >= g.start) & (g.time <= g.end)
        ax.plot(g.time[w] / 60, g.elev[w], "k-", lw=1, label="observed")
        ax.plot(t / 60, series[g.name], "r-", lw=1, label="model")
        s = scores.get(g.name)
        ax.set_title(g.name if s is None else f"{g.name}: r = {s.correlation:.2f}, peak x{s.peak_ratio:.2f}",
                     fontsize=9)
        ax.set_xlim(g.start / 60, g.end / 60)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.supxlabel("minutes after the earthquake")
    fig.supylabel("elevation (m)")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
