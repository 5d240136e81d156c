// UCP's configuration file API (/api/ucp/config-toml).
import { Module } from '@nestjs/common';
import { ConfigTomlController } from './config.controller.js';

@Module({ controllers: [ConfigTomlController] })
export class ConfigTomlModule {}
