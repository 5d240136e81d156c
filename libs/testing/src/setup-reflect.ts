// @peculiar/x509 and NestJS both need the Reflect metadata API before anything else loads.
import 'reflect-metadata';
