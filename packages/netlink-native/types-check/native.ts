// The hand-written mirror of the addon (src/native.ts) against the declarations napi-rs
// generates from the Rust (dist/native.generated.d.ts, written by `napi build`): compiled by
// test/native-types.test.ts, it fails to compile when they disagree. For every member the
// mirror declares, the addon must have it; a call the mirror allows must be one the addon
// accepts (parameters), and what the addon returns must be what the mirror promises (results
// and fields), so the TypeScript wrapper can trust the mirror.
import type * as Generated from '../dist/native.generated.js';
import type * as Mirror from '../src/native.js';

/** [A] assignable to [B]. */
type Fits<A, B> = [A] extends [B] ? true : false;

/** Per member of the mirror H: the generated G has it, and it agrees (see above). */
type Agrees<H, G> = {
  [K in keyof H]-?: K extends keyof G
    ? H[K] extends (...args: infer HA) => infer HR
      ? G[K] extends (...args: infer GA) => infer GR
        ? Fits<HA, GA> extends true
          ? Fits<GR, HR>
          : false
        : false
      : Fits<G[K], H[K]>
    : false;
};
/** The members that disagree (never when all agree): named in the compiler's error. */
type Disagreeing<H, G> = { [K in keyof Agrees<H, G>]: Agrees<H, G>[K] extends true ? never : K }[keyof H];

/** Both ways, for plain data: what the addon gives is what the mirror says, and back. */
type Same<A, B> = Fits<A, B> extends true ? Fits<B, A> : false;

type Constructor<C> = C extends abstract new (...args: infer A) => infer I ? [A, I] : never;

function agree<T extends never>(): T | undefined {
  return undefined;
}
function same<T extends true>(): T | undefined {
  return undefined;
}

// Classes: the instances, and the constructors' parameters.
agree<Disagreeing<Mirror.NativeGenlSocket, Generated.NativeGenlSocket>>();
agree<Disagreeing<Mirror.NativeMountinfoWatch, Generated.NativeMountinfoWatch>>();
agree<Disagreeing<Mirror.NativeFanotifyMountWatch, Generated.NativeFanotifyMountWatch>>();
same<Fits<Constructor<Mirror.NativeBinding['NativeGenlSocket']>[0], Constructor<typeof Generated.NativeGenlSocket>[0]>>();
same<Fits<Constructor<Mirror.NativeBinding['NativeMountinfoWatch']>[0], Constructor<typeof Generated.NativeMountinfoWatch>[0]>>();
same<Fits<Constructor<Mirror.NativeBinding['NativeFanotifyMountWatch']>[0], Constructor<typeof Generated.NativeFanotifyMountWatch>[0]>>();
// The module's functions.
agree<Disagreeing<Omit<Mirror.NativeMountBinding, 'NativeMountinfoWatch' | 'NativeFanotifyMountWatch'>, typeof Generated>>();
agree<Disagreeing<Mirror.NativeSystemdBinding, typeof Generated>>();
// Plain objects, both ways.
same<Same<Mirror.NativeFamilyInfo, Generated.NativeFamilyInfo>>();
same<Same<Mirror.NativeMessageBatch, Generated.NativeMessageBatch>>();
same<Same<Mirror.NativeNotificationBatch, Generated.NativeNotificationBatch>>();
same<Same<Mirror.NativeFollowUp, Generated.NativeFollowUp>>();
same<Same<Mirror.NativeFollowedBatch, Generated.NativeFollowedBatch>>();
same<Same<Mirror.NativeKernelMount, Generated.NativeKernelMount>>();
same<Same<Mirror.NativeMountApiSupport, Generated.NativeMountApiSupport>>();
same<Same<Mirror.NativeMountinfoBatch, Generated.NativeMountinfoBatch>>();
same<Same<Mirror.NativeMountEventBatch, Generated.NativeMountEventBatch>>();
same<Same<Mirror.NativeStatfs, Generated.NativeStatfs>>();
