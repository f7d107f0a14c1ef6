import "reflect-metadata";
import "aws-sdk-client-mock-vitest/extend";
