// Errors of the Docker front door leave as the Docker Engine API's error body, {"message": "..."},
// which the docker CLI prints as "Error response from daemon: <message>".
export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DockerApiError';
  }

  body(): { message: string } {
    return { message: this.message };
  }
}

export const badRequest = (message: string) => new DockerApiError(400, message);
export const notFound = (message: string) => new DockerApiError(404, message);
export const forbidden = (message: string) => new DockerApiError(403, message);
export const notImplemented = (message: string) => new DockerApiError(501, message);
