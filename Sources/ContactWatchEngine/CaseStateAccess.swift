extension CaseState {
    /// The open R2 alert of the case at `p`, read where the case lies. The store's encoder reads cases in place
    /// (`state.cases` through a pointer); calling the computed `openTelephoneOnly` on `p.pointee` from another module
    /// copies the whole case first (the getter is not inlinable there, and it needs a stable copy to read from: a
    /// retain and a release of each of the case's arrays), while here, in the engine, the getter is inlined and reads
    /// only the alert's box.
    package static func openTelephoneOnly(at p: UnsafePointer<CaseState>) -> OpenAlert? {
        p.pointee.openTelephoneOnly
    }
}
