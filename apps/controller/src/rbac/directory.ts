// Membership lookup token: RbacModule provides eNZi's Directory (libs/identity) under it.
export const SUBJECT_DIRECTORY = Symbol('SUBJECT_DIRECTORY');
