// Must NOT compile: proves the check in types.test.mjs can fail.
import type { MemberCard } from '../../../miniprogram/loyalty'
declare const card: MemberCard
export const available: string = card.points.available
export const missing = card.no_such_field
