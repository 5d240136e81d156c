// The audit log's read API (the recording middleware is registered in controller.ts, before routing).
import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller.js';

@Module({ controllers: [AuditController] })
export class AuditModule {}
