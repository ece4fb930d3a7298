/**
 * Growth schedules: when growth fires and how many units each site gains (method reference §5.1).
 * Schedules are stateless functions of the step, so a resumed run grows exactly as an uninterrupted one.
 */
import { InvalidArgumentError } from './errors.js';

/** How many units a site gains per growth: an absolute count or a fraction of the site's initial width. */
export type GrowthAmount = { units: number } | { fraction: number };

/** A site as a schedule sees it. */
export interface ScheduledSite {
  /** Site name (as reported by the adapter). */
  name: string;
  /** Width of the site's current layer when training started. */
  initialWidth: number;
}

/** One growth event: at `step`, grow each listed site by `units`. */
export interface GrowthEvent {
  /** Training step (iteration count before the gradient step) at which growth fires. */
  step: number;
  /** 0-based index of this event in the schedule. */
  index: number;
  /** Sites grown at this event, in order, with their unit counts. */
  sites: { site: string; units: number }[];
}

/** A growth schedule. */
export interface GrowthSchedule {
  /** Schedule kind, e.g. `"allAtOnce"`. */
  readonly name: string;
  /** The event firing at `step`, or undefined. */
  eventAt(step: number): GrowthEvent | undefined;
  /** All events in order (finite schedules), or undefined for open-ended user schedules. */
  events(): GrowthEvent[] | undefined;
}

/** Common options of the built-in schedules. */
export interface PeriodicScheduleOptions {
  /** Sites to grow, in network order. */
  sites: readonly ScheduledSite[];
  /** First step at which growth may fire; the first event is at the first multiple of `every` ≥ start. */
  start: number;
  /** Steps between events (the reference's `update_frequency`). */
  every: number;
  /** Number of events (the reference's `n_growth_steps`). */
  times: number;
  /** Units per site per growth; a record gives per-site amounts. Fractions use `max(1, floor(initial × f))`. */
  amount: GrowthAmount | Readonly<Record<string, GrowthAmount>>;
}

/** Units one growth adds to `site` for `amount` (fractions of the initial width, at least 1). */
export function unitsFor(site: ScheduledSite, amount: GrowthAmount): number {
  if ('units' in amount) {
    if (!Number.isInteger(amount.units) || amount.units <= 0) throw new InvalidArgumentError(`growth amount for site "${site.name}" must be a positive integer, got ${amount.units}`, { site: site.name });
    return amount.units;
  }
  if (!(amount.fraction > 0) || !Number.isFinite(amount.fraction)) throw new InvalidArgumentError(`growth fraction for site "${site.name}" must be positive, got ${amount.fraction}`, { site: site.name });
  return Math.max(1, Math.floor(site.initialWidth * amount.fraction));
}

function checkPeriodic(kind: string, o: PeriodicScheduleOptions): void {
  if (!Number.isInteger(o.start) || o.start < 0) throw new InvalidArgumentError(`${kind}: start must be a non-negative integer, got ${o.start}`);
  if (!Number.isInteger(o.every) || o.every <= 0) throw new InvalidArgumentError(`${kind}: every must be a positive integer, got ${o.every}`);
  if (!Number.isInteger(o.times) || o.times < 0) throw new InvalidArgumentError(`${kind}: times must be a non-negative integer, got ${o.times}`);
  if (o.sites.length === 0) throw new InvalidArgumentError(`${kind}: at least one site is needed`);
  const names = new Set<string>();
  for (const s of o.sites) {
    if (names.has(s.name)) throw new InvalidArgumentError(`${kind}: site "${s.name}" listed twice`, { site: s.name });
    names.add(s.name);
    if (!Number.isInteger(s.initialWidth) || s.initialWidth <= 0) throw new InvalidArgumentError(`${kind}: site "${s.name}" needs a positive initialWidth, got ${s.initialWidth}`, { site: s.name });
  }
}

function amountOf(o: PeriodicScheduleOptions, site: ScheduledSite): GrowthAmount {
  const a = o.amount as GrowthAmount | Record<string, GrowthAmount>;
  if ('units' in a && typeof a.units === 'number') return a as GrowthAmount;
  if ('fraction' in a && typeof a.fraction === 'number') return a as GrowthAmount;
  const per = (a as Record<string, GrowthAmount>)[site.name];
  if (!per) throw new InvalidArgumentError(`no growth amount given for site "${site.name}"`, { site: site.name });
  return per;
}

function periodic(kind: string, o: PeriodicScheduleOptions, pick: (index: number) => readonly ScheduledSite[]): GrowthSchedule {
  checkPeriodic(kind, o);
  const first = Math.ceil(o.start / o.every) * o.every;
  const units = new Map(o.sites.map((s) => [s.name, unitsFor(s, amountOf(o, s))]));
  const make = (index: number): GrowthEvent => ({
    step: first + index * o.every,
    index,
    sites: pick(index).map((s) => ({ site: s.name, units: units.get(s.name)! })),
  });
  return {
    name: kind,
    eventAt(step: number) {
      if (step < first || (step - first) % o.every !== 0) return undefined;
      const index = (step - first) / o.every;
      return index < o.times ? make(index) : undefined;
    },
    events() {
      return Array.from({ length: o.times }, (_, i) => make(i));
    },
  };
}

/**
 * All sites grow at every event, in network order (the reference's `AllAtOnce`): e.g. 12 events every 2500
 * steps from step 10000, each adding 25% of the initial width, takes a 0.25× network to 1×.
 */
export function allAtOnce(options: PeriodicScheduleOptions): GrowthSchedule {
  return periodic('allAtOnce', options, () => options.sites);
}

/** One site per event, cycling through the sites in order (the reference's `RoundRobin`). */
export function roundRobin(options: PeriodicScheduleOptions): GrowthSchedule {
  return periodic('roundRobin', options, (i) => [options.sites[i % options.sites.length]!]);
}

/**
 * A user schedule: `decide(step)` returns the sites to grow at that step (or undefined). Events are numbered
 * in the order they are first queried at increasing steps; `events()` is undefined (open-ended).
 */
export function customSchedule(name: string, decide: (step: number) => { site: string; units: number }[] | undefined): GrowthSchedule {
  const seen = new Map<number, number>();
  return {
    name,
    eventAt(step: number) {
      const sites = decide(step);
      if (!sites || sites.length === 0) return undefined;
      for (const s of sites) {
        if (!Number.isInteger(s.units) || s.units <= 0) throw new InvalidArgumentError(`schedule "${name}" asked for ${s.units} units at site "${s.site}" (step ${step})`, { site: s.site, step });
      }
      if (!seen.has(step)) seen.set(step, seen.size);
      return { step, index: seen.get(step)!, sites };
    },
    events() {
      return undefined;
    },
  };
}

/** Final width of every site after all events of a finite schedule. */
export function finalWidths(schedule: GrowthSchedule, sites: readonly ScheduledSite[]): Record<string, number> {
  const widths: Record<string, number> = Object.fromEntries(sites.map((s) => [s.name, s.initialWidth]));
  const events = schedule.events();
  if (!events) throw new InvalidArgumentError(`schedule "${schedule.name}" is open-ended; final widths are unknown`);
  for (const e of events) for (const s of e.sites) widths[s.site] = (widths[s.site] ?? 0) + s.units;
  return widths;
}
