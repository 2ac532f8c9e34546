// How a page written in TypeScript uses the client: compiled (not run) by types.test.mjs, strict.
import { createClient, LoyaltyError } from '../../../miniprogram/loyalty'
import type { MemberCard, Page, HistoryEntry } from '../../../miniprogram/loyalty'
import type { paths } from '../../../miniprogram/types/api'

declare const wx: Parameters<typeof createClient>[0]['wx']

export async function show (): Promise<string> {
  const loyalty = createClient({ baseUrl: 'https://api.example.com', appid: 'wxdemo0000000000', wx })
  const card: MemberCard = await loyalty.card()
  const available: number = card.points.available
  const tierName: string = card.tier.name
  const history: Page<HistoryEntry> = await loyalty.pointsHistory({ limit: 20 })
  const kinds: string[] = history.items.map(entry => entry.type)
  type LoginBody = paths['/v1/auth/login']['post']['requestBody']
  const body: NonNullable<LoginBody>['content']['application/json'] = { appid: 'wx', code: 'c' }
  try {
    await loyalty.redeem({ reward_id: 'demo-cup' })
  } catch (error) {
    if (error instanceof LoyaltyError && error.code === 'insufficient_points') return 'not enough points'
  }
  return `${tierName} ${available} ${kinds.join()} ${body.code}`
}
