import type { Logger } from "../observability/log.ts";
import { type Periodic, runEvery } from "./periodic.ts";

/** Client certificates closer than this to their end are warned about. */
export const EXPIRY_WARNING_MS = 14 * 86_400_000;

export interface CertificateExpiry {
  subscription_id: string;
  tenant_id: string | null;
  not_after: Date;
}

/**
 * Logs a warning for every client certificate with less than 14 days left,
 * at start-up and then every `intervalMs` (a day), so each one is warned
 * about once a day until it is replaced.
 */
export function startCertificateExpiryWarnings(
  deps: { expiries: () => Promise<CertificateExpiry[]>; log: Logger },
  options: { intervalMs?: number; now?: () => number } = {},
): Periodic {
  return runEvery(options.intervalMs ?? 86_400_000, async () => {
    await warnOfExpiringCertificates(deps, options.now ?? Date.now);
  });
}

/** One pass: a warning per certificate that ends within {@linkcode EXPIRY_WARNING_MS}. */
export async function warnOfExpiringCertificates(
  deps: { expiries: () => Promise<CertificateExpiry[]>; log: Logger },
  now: () => number = Date.now,
): Promise<void> {
  let expiries: CertificateExpiry[];
  try {
    expiries = await deps.expiries();
  } catch (err) {
    deps.log.warn("Reading client certificate expiries failed; tomorrow's pass retries", {
      error: err,
    });
    return;
  }
  for (const e of expiries) {
    const leftMs = e.not_after.getTime() - now();
    if (leftMs >= EXPIRY_WARNING_MS) break; // Soonest first: the rest have longer.
    deps.log.warn(
      leftMs <= 0
        ? "A subscription's client certificate has expired: endpoints that require it refuse deliveries"
        : "A subscription's client certificate expires in less than 14 days: replace it",
      {
        subscription_id: e.subscription_id,
        tenant_id: e.tenant_id,
        not_after: e.not_after.toISOString(),
        days_left: Math.floor(leftMs / 86_400_000),
      },
    );
  }
}
