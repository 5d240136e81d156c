import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiError, errorBody } from './errors.js';

@Injectable()
class Greeter {
  greet(): string {
    return 'hi';
  }
}

@Injectable()
class UsesGreeter {
  constructor(readonly greeter: Greeter) {}
}

@Module({ providers: [Greeter, UsesGreeter] })
class DemoModule {}

describe('errors', () => {
  it('builds the UCP error body', () => {
    expect(errorBody('INVALID_JOIN_TOKEN', 'bad')).toEqual({
      errors: [{ code: 'INVALID_JOIN_TOKEN', message: 'bad' }],
    });
    const err = new ApiError(401, 'UNAUTHORIZED', 'no');
    expect(err.body()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'no' }] });
  });

  it('runs under jest with Nest constructor injection (toolchain check)', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [DemoModule] }).compile();
    expect(moduleRef.get(UsesGreeter).greeter.greet()).toBe('hi');
  });
});
