// Role and state colours. Full class names only (Tailwind scans for them).
import type { Role, TaskState } from '../api/types'

export interface RoleStyle {
  label: string
  short: string
  /** Solid dot / bar background. */
  dot: string
  /** Text colour. */
  text: string
  /** Left border of a card. */
  border: string
  /** Soft chip background + text. */
  chip: string
  /** SVG stroke. */
  stroke: string
}

export const ROLE_STYLE: Record<Role, RoleStyle> = {
  ARCHITECT: {
    label: 'Architect',
    short: 'ARC',
    dot: 'bg-orange-500',
    text: 'text-orange-400',
    border: 'border-l-orange-500',
    chip: 'bg-orange-500/15 text-orange-300 ring-orange-500/30',
    stroke: '#f97316',
  },
  DEVELOPER: {
    label: 'Developer',
    short: 'DEV',
    dot: 'bg-blue-500',
    text: 'text-blue-400',
    border: 'border-l-blue-500',
    chip: 'bg-blue-500/15 text-blue-300 ring-blue-500/30',
    stroke: '#3b82f6',
  },
  QA: {
    label: 'QA',
    short: 'QA',
    dot: 'bg-green-500',
    text: 'text-green-400',
    border: 'border-l-green-500',
    chip: 'bg-green-500/15 text-green-300 ring-green-500/30',
    stroke: '#22c55e',
  },
}

export interface StateStyle {
  label: string
  text: string
  dot: string
  accent: string
  badge: string
  stroke: string
}

export const STATE_STYLE: Record<TaskState, StateStyle> = {
  pending: {
    label: 'Pending',
    text: 'text-slate-300',
    dot: 'bg-slate-400',
    accent: 'border-t-slate-500',
    badge: 'bg-slate-500/15 text-slate-300 ring-slate-500/30',
    stroke: '#94a3b8',
  },
  active: {
    label: 'Active',
    text: 'text-sky-300',
    dot: 'bg-sky-400',
    accent: 'border-t-sky-500',
    badge: 'bg-sky-500/15 text-sky-300 ring-sky-500/30',
    stroke: '#38bdf8',
  },
  completed: {
    label: 'Completed',
    text: 'text-emerald-300',
    dot: 'bg-emerald-400',
    accent: 'border-t-emerald-500',
    badge: 'bg-emerald-500/15 text-emerald-300 ring-emerald-500/30',
    stroke: '#34d399',
  },
  failed: {
    label: 'Failed',
    text: 'text-amber-300',
    dot: 'bg-amber-400',
    accent: 'border-t-amber-500',
    badge: 'bg-amber-500/15 text-amber-300 ring-amber-500/30',
    stroke: '#fbbf24',
  },
  dead: {
    label: 'Dead',
    text: 'text-rose-300',
    dot: 'bg-rose-500',
    accent: 'border-t-rose-500',
    badge: 'bg-rose-500/15 text-rose-300 ring-rose-500/30',
    stroke: '#fb7185',
  },
}
