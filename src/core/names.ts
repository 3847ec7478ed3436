/** What a release may be called: a tag-like name that is safe as a path segment. */
export const RELEASE_NAME = /^(?!current$)[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
