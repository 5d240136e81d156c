/** The UCP version orca reports (UCP 3.0 line) and the Docker API version it speaks. */
export const ORCA_VERSION = '3.0.0-orca';
export const UCP_API_VERSION = '1.30';
